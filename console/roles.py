"""Console roles and what each may do.

Roles are Django groups; code never asks "is this user a Reviewer?", it asks for a
capability, so a role can change what it grants in one place.

Roles can be scoped to a workspace (``WorkspaceRole``): asked about a workspace, a person
holding any role there has exactly those roles there; otherwise their groups apply.
"""

from collections.abc import Iterable
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import CharField, OuterRef, Q, QuerySet, Value

from console.role_models import WorkspaceRole
from console.workspaces import Workspace, workspaces_all


class Role(StrEnum):
    VIEWER = "Viewer"
    EDITOR = "Editor"
    REVIEWER = "Reviewer"
    AUDITOR = "Auditor"
    ADMIN = "Admin"


class Capability(StrEnum):
    BROWSE = "browse"  # read Braze resources through the console
    PROPOSE = "propose"  # open and edit change requests
    REVIEW = "review"  # approve or reject other people's change requests
    AUDIT = "audit"  # read and export the audit trail and access review
    MANAGE_USERS = "manage_users"  # console users, roles, policies, dashboard users


ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.VIEWER: frozenset({Capability.BROWSE}),
    Role.EDITOR: frozenset({Capability.BROWSE, Capability.PROPOSE}),
    Role.REVIEWER: frozenset({Capability.BROWSE, Capability.REVIEW}),
    Role.AUDITOR: frozenset({Capability.BROWSE, Capability.AUDIT}),
    Role.ADMIN: frozenset({Capability.BROWSE, Capability.AUDIT, Capability.MANAGE_USERS}),
}

ROLE_DESCRIPTIONS: dict[Role, str] = {
    Role.VIEWER: "Browse catalogs and content.",
    Role.EDITOR: "Browse and propose changes.",
    Role.REVIEWER: "Approve or reject other people's content changes.",
    Role.AUDITOR: "Read everything, read and export the audit log; change nothing.",
    Role.ADMIN: (
        "Manage console users, roles, policies and dashboard users; approve other Admins' "
        "changes to them."
    ),
}

# Roles that put someone on the checking side of maker-checker: a Reviewer approves content,
# an Admin approves people and policy changes. Granting either is itself a change request
# another Admin approves; the other roles only browse, propose or read, so they are granted
# at once (an Admin already reads everything an Auditor does).
GRANTS_NEEDING_APPROVAL: frozenset[Role] = frozenset({Role.REVIEWER, Role.ADMIN})

_CACHE_ATTR = "_console_roles"
_WORKSPACE_CACHE_ATTR = "_console_workspace_roles"


def user_roles(
    user: AbstractBaseUser | AnonymousUser, workspace: str | None = None
) -> frozenset[Role]:
    """The user's roles (in ``workspace``, a key, when named), cached on the user object."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        _roles_load(user)
        cached = getattr(user, _CACHE_ATTR)
    if workspace is None:
        return cached
    scoped = _workspace_roles(user)
    return scoped.get(workspace, cached)


def _workspace_roles(user: AbstractBaseUser) -> dict[str, frozenset[Role]]:
    cached: dict[str, frozenset[Role]] | None = getattr(user, _WORKSPACE_CACHE_ATTR, None)
    if cached is None:
        _roles_load(user)
        cached = getattr(user, _WORKSPACE_CACHE_ATTR)
    return cached


def user_workspaces_scoped(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """Keys of the workspaces where ``user`` holds roles of that workspace only."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    return frozenset(_workspace_roles(user))


def user_roles_anywhere(user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    """Every role ``user`` holds in some workspace or console-wide: who needs a second factor
    is asked about it, since an Admin of production only is an Admin."""
    scoped = _workspace_roles(user) if user.is_authenticated and user.is_active else {}
    return user_roles(user).union(*scoped.values())


def user_roles_fingerprint(user: AbstractBaseUser | AnonymousUser) -> str:
    """The console-wide roles, then each workspace's own (only when there are some, so a
    fingerprint taken before roles per workspace existed stays the same)."""
    text = ",".join(sorted(role.value for role in user_roles(user)))
    scoped = _workspace_roles(user) if user.is_authenticated and user.is_active else {}
    for key in sorted(scoped):
        text += f";{key}=" + ",".join(sorted(role.value for role in scoped[key]))
    return text


def _roles_load(user: AbstractBaseUser) -> None:
    """Cache the user's roles everywhere (their groups) and per workspace in one query:
    nearly every signed-in request asks for both, and a round trip to PostgreSQL is what a
    request waits on most when the host is busy."""
    groups = (
        Group.objects.filter(user__pk=user.pk)
        .annotate(scope=Value(None, output_field=CharField()))
        .values_list("name", "scope")
    )
    scoped = WorkspaceRole.objects.filter(user_id=user.pk).values_list("role", "workspace")
    rows = list(groups.union(scoped, all=True))
    _roles_cache(
        user,
        everywhere=[name for name, workspace in rows if workspace is None],
        scoped=[(name, workspace) for name, workspace in rows if workspace is not None],
    )


def _roles_cache(
    user: AbstractBaseUser, *, everywhere: Iterable[str], scoped: Iterable[tuple[str, str]]
) -> None:
    known = Role._value2member_map_
    found: dict[str, set[Role]] = {}
    for name, workspace in scoped:
        if name in known:
            found.setdefault(workspace, set()).add(Role(name))
    setattr(user, _CACHE_ATTR, frozenset(Role(name) for name in everywhere if name in known))
    setattr(user, _WORKSPACE_CACHE_ATTR, {ws: frozenset(roles) for ws, roles in found.items()})


# The annotations user_with_roles_get reads the roles from (they never reach a template).
_GROUP_NAMES, _SCOPED_ROLES, _SCOPED_KEYS = (
    "console_group_names",
    "console_ws_roles",
    "console_ws_keys",
)


def user_with_roles_get(*, pk: str | int) -> User | None:
    """The user with primary key ``pk``, their roles already cached as user_roles reads them:
    the authentication backends load the signed-in user with this on every request, so the
    user and their roles cost one query, not two."""
    scoped = WorkspaceRole.objects.filter(user_id=OuterRef("pk")).order_by("pk")
    try:
        user = User._default_manager.annotate(
            **{
                _GROUP_NAMES: ArraySubquery(
                    Group.objects.filter(user=OuterRef("pk")).values("name")
                ),
                # Two arrays in the same order: a role and the workspace it is held in.
                _SCOPED_ROLES: ArraySubquery(scoped.values("role")),
                _SCOPED_KEYS: ArraySubquery(scoped.values("workspace")),
            }
        ).get(pk=pk)
    except User.DoesNotExist:
        return None
    _roles_cache(
        user,
        everywhere=getattr(user, _GROUP_NAMES),
        scoped=zip(getattr(user, _SCOPED_ROLES), getattr(user, _SCOPED_KEYS), strict=True),
    )
    return user


def user_capabilities(
    user: AbstractBaseUser | AnonymousUser, workspace: str | None = None
) -> frozenset[Capability]:
    caps: set[Capability] = set()
    for role in user_roles(user, workspace):
        caps |= ROLE_CAPABILITIES[role]
    return frozenset(caps)


def user_has_any(
    user: AbstractBaseUser | AnonymousUser,
    capabilities: Iterable[Capability],
    workspace: str | None = None,
) -> bool:
    return bool(user_capabilities(user, workspace) & set(capabilities))


def roles_with(capability: Capability) -> frozenset[Role]:
    return frozenset(role for role, caps in ROLE_CAPABILITIES.items() if capability in caps)


def users_holding(capability: Capability, *, workspace: str) -> QuerySet[User]:
    """Active people holding ``capability`` in ``workspace`` (a key): by the roles they hold
    there when they hold any, else by their console-wide roles (their groups)."""
    names = [role.value for role in roles_with(capability)]
    scoped_there = WorkspaceRole.objects.filter(workspace=workspace)
    return (
        User.objects.filter(is_active=True)
        .filter(
            Q(pk__in=scoped_there.filter(role__in=names).values("user_id"))
            | (Q(groups__name__in=names) & ~Q(pk__in=scoped_there.values("user_id")))
        )
        .distinct()
    )


def roles_ensure_groups() -> None:
    """Create the role groups if missing (idempotent; used by migrations and tests)."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


def forget_cached_roles(user: AbstractBaseUser) -> None:
    for attr in (_CACHE_ATTR, _WORKSPACE_CACHE_ATTR):
        if hasattr(user, attr):
            delattr(user, attr)


def user_roles_assign(*, user: User, roles: Iterable[Role]) -> None:
    """Make `roles` the user's roles: the membership write alone, with no audit entry and
    no second Admin's approval. A person's roles change only through
    users_admin.services.user_set_roles and sso's sign-in (each records its own entry), which
    call this; seeding demo and test accounts calls it directly."""
    roles_ensure_groups()
    user.groups.set(Group.objects.filter(name__in=[role.value for role in roles]))
    forget_cached_roles(user)


def user_workspace_roles_assign(*, user: User, workspace: str, roles: Iterable[Role]) -> None:
    """Make `roles` the user's roles in `workspace` (none: their roles everywhere apply
    there again). The membership write alone, like ``user_roles_assign``: a person's
    workspace roles change only through an approved change request
    (users_admin.services.user_workspace_roles_propose); seeding and tests call this."""
    WorkspaceRole.objects.filter(user=user, workspace=workspace).delete()
    WorkspaceRole.objects.bulk_create(
        WorkspaceRole(user=user, workspace=workspace, role=role.value) for role in set(roles)
    )
    forget_cached_roles(user)


def workspaces_other_where(
    user: AbstractBaseUser | AnonymousUser, capability: Capability, *, besides: str
) -> list[Workspace]:
    """The workspaces other than ``besides`` where ``user`` has ``capability``: where a
    promotion or a copy of items from ``besides`` may go."""
    return [
        w for w in workspaces_all() if w.key != besides and user_has_any(user, [capability], w.key)
    ]
