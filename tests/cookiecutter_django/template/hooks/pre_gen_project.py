"""The template's own refusal of combinations it cannot serve (reduced: only the static-files one)."""
import sys

if "{{ cookiecutter.cloud_provider }}" == "None" and "{{ cookiecutter.use_whitenoise }}".lower() == "n":
    print(
        "You should either use Whitenoise or select a Cloud Provider to serve static files"
    )
    sys.exit(1)
