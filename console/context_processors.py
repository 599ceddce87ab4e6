from django.http import HttpRequest

from console.navigation import navigation_for
from console.roles import user_roles


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "user_role_names": []}
    return {
        "nav_links": navigation_for(request),
        "user_role_names": sorted(role.value for role in user_roles(user)),
    }
