from django.conf import settings
from django.http import HttpResponse

from pages.models import Visit

# The test rewrites this line to tell releases apart.
RELEASE = "v1"


def home(request):
    Visit.objects.create(path=request.path)
    return HttpResponse(f"twelve-factor {RELEASE}: {Visit.objects.count()} visits, "
                        f"mail key set: {bool(settings.MAILGUN_API_KEY)}\n", content_type="text/plain")
