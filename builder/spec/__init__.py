"""The image spec: model.py (the validated model), loader.py (YAML with positions -> model or a
one-line error), app_source.py (where a baked app comes from), reference.py (docs/spec-reference.md).

`from builder.spec import Spec` and `spec.load(path)` are the API the rest of djbake uses.
"""
from builder.spec.loader import load, loads
from builder.spec.model import App, Spec, Stack, json_schema

__all__ = ["App", "Spec", "Stack", "json_schema", "load", "loads"]
