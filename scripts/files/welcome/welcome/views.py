"""The two pages a fresh VM answers before any project is deployed."""
import django
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render


def index(request):
    return render(request, "welcome/index.html", {"django_version": django.get_version()})


def healthz(request):
    """200 when the app and (if configured) its database answer; 503 otherwise."""
    # scheme: what Django believes (nginx's X-Forwarded-Proto); tests use it.
    status = {"app": "ok", "scheme": request.scheme}
    if "default" in connections.settings and connections.settings["default"].get("NAME"):
        try:
            connections["default"].ensure_connection()
            status["database"] = "ok"
        except Exception as e:  # noqa: BLE001 - reported, not raised: this is a probe
            status["database"] = f"error: {type(e).__name__}"
            return JsonResponse(status, status=503)
    return JsonResponse(status)
