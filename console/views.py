from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console.access import require_login
from console.braze import get_limiter
from console.braze.limiter import limits_in_effect
from console.health import check_braze, health_report
from console.roles import ROLE_DESCRIPTIONS, user_roles


@require_GET
@require_login()
def home(request: HttpRequest) -> HttpResponse:
    roles = sorted(user_roles(request.user))
    braze_ok, braze_detail = check_braze()
    return render(
        request,
        "console/home.html",
        {
            "role_descriptions": [(role.value, ROLE_DESCRIPTIONS[role]) for role in roles],
            # Reachability, key permissions (cached probe) and the rate limits in effect:
            # configured beside what Braze announced (X-RateLimit-Limit), kept in Redis.
            "braze": {
                "ok": braze_ok,
                "detail": braze_detail,
                "limits": limits_in_effect(get_limiter()),
            },
        },
    )


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Unauthenticated on purpose (load balancers); it reveals no configuration."""
    report = health_report()
    healthy = all(bool(item["ok"]) for item in report.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": report},
        status=200 if healthy else 503,
    )
