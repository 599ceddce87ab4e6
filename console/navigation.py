"""The main navigation: one list, filtered by the signed-in user's capabilities."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse

from console.changes.selectors import review_count_for
from console.roles import Capability, user_capabilities


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    url_name: str
    section: str  # first path segment that marks the item as current
    capabilities: frozenset[Capability]
    # A number shown beside the label (e.g. requests awaiting my review); 0 hides it.
    badge: Callable[[HttpRequest], int] | None = None


def _awaiting_my_review(request: HttpRequest) -> int:
    user = request.user
    if not isinstance(user, AbstractBaseUser):
        return 0
    return review_count_for(user, _workspace_key(request))


NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem("Catalogs", "catalogs:list", "/catalogs/", frozenset({Capability.BROWSE})),
    NavItem(
        "Email templates",
        "templates_app:email_templates",
        "/content/templates/",
        frozenset({Capability.BROWSE}),
    ),
    NavItem(
        "Content blocks",
        "templates_app:content_blocks",
        "/content/blocks/",
        frozenset({Capability.BROWSE}),
    ),
    NavItem(
        "Preference centers",
        "templates_app:preference_centers",
        "/content/preference-centers/",
        frozenset({Capability.BROWSE}),
    ),
    NavItem(
        "Content files",
        "bundles:files",
        "/content/files/",
        frozenset({Capability.BROWSE}),
    ),
    NavItem("Promote", "bundles:promote", "/content/promote/", frozenset({Capability.PROPOSE})),
    NavItem(
        "Approvals",
        "changes:list",
        "/changes/",
        frozenset(
            {Capability.PROPOSE, Capability.REVIEW, Capability.AUDIT, Capability.MANAGE_USERS}
        ),
        badge=_awaiting_my_review,
    ),
    NavItem("Audit log", "audit:list", "/audit/", frozenset({Capability.AUDIT})),
    NavItem(
        "Users",
        "users_admin:index",
        "/users/",
        frozenset({Capability.MANAGE_USERS, Capability.AUDIT}),
    ),
)


@dataclass(frozen=True, slots=True)
class NavLink:
    label: str
    url: str
    current: bool
    count: int = 0


def _workspace_key(request: HttpRequest) -> str | None:
    workspace = getattr(request, "workspace", None)  # RequestFactory requests have none
    return workspace.key if workspace is not None else None


def navigation_for(request: HttpRequest) -> list[NavLink]:
    caps = user_capabilities(request.user, _workspace_key(request))
    return [
        NavLink(
            item.label,
            reverse(item.url_name),
            request.path_info.startswith(item.section),
            item.badge(request) if item.badge else 0,
        )
        for item in NAV_ITEMS
        if item.capabilities & caps
    ]


# Screens inside the Audit log section, shown as tabs on each of them.
AUDIT_TABS: tuple[NavItem, ...] = (
    NavItem("Entries", "audit:list", "/audit/", frozenset({Capability.AUDIT})),
    NavItem("Integrity", "audit:integrity", "/audit/integrity/", frozenset({Capability.AUDIT})),
    NavItem(
        "Personal data erasure",
        "audit:erasure",
        "/audit/erasure/",
        frozenset({Capability.MANAGE_USERS}),
    ),
)


def tabs_for(request: HttpRequest, items: tuple[NavItem, ...]) -> list[NavLink]:
    """A section's tabs the user may open; the most specific matching one is current."""
    caps = user_capabilities(request.user, _workspace_key(request))
    visible = [item for item in items if item.capabilities & caps]
    matching = [item for item in visible if request.path_info.startswith(item.section)]
    current = max(matching, key=lambda item: len(item.section), default=None)
    return [NavLink(item.label, reverse(item.url_name), item is current) for item in visible]


def section_list_url(path_info: str) -> str:
    """The list page of the section ``path_info`` is in (home when in none)."""
    for item in NAV_ITEMS:
        if path_info.startswith(item.section):
            return reverse(item.url_name)
    return reverse("home")
