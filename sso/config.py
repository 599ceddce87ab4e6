"""Single sign-on settings, read from django.conf.settings (set from the environment in
console/settings.py) so tests can change them."""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from console.roles import Role

PASSWORD = "password"  # noqa: S105 (a sign-in method's name, not a password)
SSO = "sso"


def sso_enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


def local_passwords_allowed() -> bool:
    """Whether anyone but the break-glass accounts may sign in with a password."""
    return not sso_enabled() or settings.SSO_LOCAL_PASSWORDS


def break_glass_usernames() -> frozenset[str]:
    return frozenset(settings.SSO_BREAK_GLASS_USERNAMES)


@dataclass(frozen=True, slots=True)
class GroupRole:
    group: str
    role: Role


def role_mapping_parse(spec: str) -> tuple[GroupRole, ...]:
    """`OIDC_ROLE_MAP`: "group=Role" pairs separated by commas or new lines; a group may
    grant several roles and several groups the same role."""
    pairs: list[GroupRole] = []
    for entry in filter(None, (e.strip() for e in spec.replace("\n", ",").split(","))):
        group, sep, role = entry.rpartition("=")
        if not sep or not group.strip() or role.strip() not in Role:
            roles = ", ".join(r.value for r in Role)
            raise ImproperlyConfigured(
                f"OIDC_ROLE_MAP: {entry!r} is not group=Role (roles: {roles})"
            )
        pairs.append(GroupRole(group.strip(), Role(role.strip())))
    return tuple(pairs)


def roles_from_groups(groups: object) -> frozenset[Role]:
    """The console roles the IdP's groups claim grants (an absent or malformed claim: none)."""
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list | tuple):
        return frozenset()
    names = {g for g in groups if isinstance(g, str)}
    return frozenset(m.role for m in role_mapping_parse(settings.OIDC_ROLE_MAP) if m.group in names)
