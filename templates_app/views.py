from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.access import require_capability
from console.roles import Capability


@require_GET
@require_capability(Capability.BROWSE)
def email_template_list(request: HttpRequest) -> HttpResponse:
    return render(request, "templates_app/email_template_list.html")


@require_GET
@require_capability(Capability.BROWSE)
def content_block_list(request: HttpRequest) -> HttpResponse:
    return render(request, "templates_app/content_block_list.html")


@require_GET
@require_capability(Capability.BROWSE)
def preference_center_list(request: HttpRequest) -> HttpResponse:
    return render(request, "templates_app/preference_center_list.html")
