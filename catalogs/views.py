from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.access import require_capability
from console.roles import Capability


@require_GET
@require_capability(Capability.BROWSE)
def catalog_list(request: HttpRequest) -> HttpResponse:
    return render(request, "catalogs/catalog_list.html")
