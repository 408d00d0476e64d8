from django.conf import settings
from django.contrib import admin
from django.urls import path

from pages.views import home

urlpatterns = [
    path("", home),
    path(settings.ADMIN_URL, admin.site.urls),
]
