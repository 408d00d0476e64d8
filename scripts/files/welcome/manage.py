#!/usr/bin/env python3
"""The welcome project's manage.py (replaced when a project is deployed)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "welcome.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
