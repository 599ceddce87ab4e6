from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from console.access import require_login
from console.braze import get_limiter
from console.braze.limiter import limits_in_effect
from console.health import check_braze, health_report_cached
from console.home.selectors import home_for
from console.home.services import home_mark_seen
from console.http import AuthenticatedRequest
from console.net import client_ip
from console.roles import ROLE_DESCRIPTIONS, Capability, user_capabilities, user_roles
from console.signin import signin_attempt_admit
from console.signin_steps import signin_next_step


@require_GET
@require_login()
def home(request: AuthenticatedRequest) -> HttpResponse:
    roles = sorted(user_roles(request.user))
    braze_ok, braze_detail = check_braze()
    return render(
        request,
        "console/home.html",
        {
            "role_descriptions": [(role.value, ROLE_DESCRIPTIONS[role]) for role in roles],
            "home": home_for(user=request.user),
            "may_audit": Capability.AUDIT in user_capabilities(request.user),
            # Reachability, key permissions (cached probe) and the rate limits in effect:
            # configured beside what Braze announced (X-RateLimit-Limit), kept in Redis.
            "braze": {
                "ok": braze_ok,
                "detail": braze_detail,
                "limits": limits_in_effect(get_limiter()),
            },
        },
    )


class SeenForm(forms.Form):
    seq = forms.IntegerField(min_value=0)


@require_POST
@require_login()
def home_seen(request: AuthenticatedRequest) -> HttpResponse:
    """Mark the changes made outside the console that the home showed as seen."""
    form = SeenForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("An entry number is needed.")
    home_mark_seen(user=request.user, seq=form.cleaned_data["seq"])
    return HttpResponseRedirect(reverse("home"), status=303)


class SignInView(LoginView):
    """Django's sign-in, behind the throttle that runs before any password is checked."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not signin_attempt_admit(source=client_ip(request)):
            return render(request, "registration/locked_out.html", status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        # A second factor (mfa's step), where there is one or the roles need one, comes
        # before signing in.
        next_step = signin_next_step(
            self.request, user=form.get_user(), next_url=self.get_success_url()
        )
        return next_step or super().form_valid(form)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Public on purpose (load balancers): anyone learns whether the console is healthy;
    signed-in users also get each check's detail (the Braze instance, the key's missing
    permissions), as on the home page. The checks run at most every HEALTHZ_CACHE_SECONDS.
    """
    report = health_report_cached()
    healthy = all(bool(item["ok"]) for item in report.values())
    body: dict[str, object] = {"status": "ok" if healthy else "degraded"}
    if request.user.is_authenticated:
        body["checks"] = report
    return JsonResponse(body, status=200 if healthy else 503)
