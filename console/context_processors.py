from django.http import HttpRequest

from console.navigation import navigation_for
from console.roles import Capability, user_capabilities, user_roles


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "user_role_names": [], "can_search": False}
    return {
        "nav_links": navigation_for(request),
        # The header's search box mirrors the search view's own capability check.
        "can_search": Capability.BROWSE in user_capabilities(user),
        "user_role_names": sorted(role.value for role in user_roles(user)),
    }
