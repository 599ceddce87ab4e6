from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from console.navigation import navigation_for
from console.roles import Capability, user_capabilities, user_roles
from console.workspace_urls import workspace_switch_links, workspaces_in_urls


def navigation(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "user_role_names": [], "can_search": False}
    workspace = getattr(request, "workspace", None)  # RequestFactory requests have none
    key = workspace.key if workspace is not None else None
    context: dict[str, object] = {
        # Built when a template shows them: the htmx fragments that swap one element of a page
        # never do, and the badge in the navigation costs a query.
        "nav_links": SimpleLazyObject(lambda: navigation_for(request)),
        # The header's search box mirrors the search view's own capability check.
        "can_search": Capability.BROWSE in user_capabilities(user, key),
        # The roles held in this workspace (console/roles.py, WorkspaceRole).
        "user_role_names": sorted(role.value for role in user_roles(user, key)),
    }
    if workspaces_in_urls():
        # Shown on every page while there is more than one workspace to be in.
        context["current_workspace"] = workspace
        context["workspace_links"] = SimpleLazyObject(lambda: workspace_switch_links(request))
    return context
