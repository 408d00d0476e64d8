from django.http import HttpResponse
from django.urls import path

from sample.models import Visit


def index(request):
    Visit.objects.create()
    return HttpResponse(f"sample project: {Visit.objects.count()} visits\n", content_type="text/plain")


urlpatterns = [path("", index)]
