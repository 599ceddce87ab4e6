"""How approved change requests reach Braze dashboard users (SCIM).

Identifiers: the SCIM user id for updates and removals, and `new:<token>` for an account
not created yet. The token is random rather than the email, because identifiers are
written into the chained (not erasable) part of the audit trail.
Snapshots leave out `lastSignInAt` (a sign-in is not a conflicting change) and the
`appGroupId`/`teamId` Braze adds to what was named by name; they keep roles, permission sets
and teams, which the console does not edit but an update must not lose (Braze's PUT replaces
the whole account, so the apply step reads it again and writes back all it does not change).
"""

import hashlib
from typing import Any

from django.contrib.auth.models import User

from console.audit.hashing import canonical_json
from console.braze import BrazeNotFound, get_client
from console.braze.client import ScimUser
from console.changes.appliers import ConsoleUserApplier, merge_state
from console.changes.diff import same
from console.changes.models import ChangeRequest
from console.changes.resource_types import ResourceType, resource_type_register
from console.roles import Capability
from console.workspaces import workspace_active, workspace_get
from users_admin.identifiers import (
    IDENTIFIERS,
    RESOURCE_TYPE,
    ROLES_IDENTIFIERS,
    ROLES_RESOURCE_TYPE,
    WORKSPACE_ROLES_IDENTIFIERS,
    WORKSPACE_ROLES_RESOURCE_TYPE,
)
from users_admin.scim_rules import normal_permissions, permissions_for_write
from users_admin.selectors import (
    console_user_role_names,
    console_user_roles_snapshot,
    console_user_workspace_roles_snapshot,
)
from users_admin.services import user_roles_apply_approved, user_workspace_roles_apply_approved


def snapshot(user: ScimUser) -> dict[str, Any]:
    return {
        "email": user.user_name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "department": user.department,
        "permissions": normal_permissions(user.permissions),
    }


def snapshot_hash(state: dict[str, Any]) -> str:
    """Fingerprint of a snapshot: an edit form carries it to notice changes made meanwhile."""
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()


class DashboardUserApplier:
    def read_current(self, identifier: str) -> dict[str, Any] | None:
        if "token" in IDENTIFIERS.parse(identifier):
            return None  # a new account has no id yet; an existing email makes Braze answer 409
        try:
            return snapshot(get_client(lane="background").scim_user_get(user_id=identifier))
        except BrazeNotFound:
            return None

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        if action == "create":
            found = get_client(lane="background").scim_user_search(email=payload["email"])
            return found is not None and same(
                {**snapshot(found), "email": payload["email"]}, payload
            )
        current = self.read_current(identifier)
        if action == "delete":
            return current is None
        return current is not None and same(current, {**current, **payload})

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        client = get_client(lane="background")
        if action == "delete":
            client.scim_user_remove(user_id=identifier)
            return {"removed": identifier}
        fields = {
            "given_name": payload["given_name"],
            "family_name": payload["family_name"],
            "department": payload["department"],
            "permissions": payload["permissions"],
        }
        if action == "create":
            fields["permissions"] = permissions_for_write(payload["permissions"], None)
            user = client.scim_user_create(email=payload["email"], **fields)
        else:
            # Read, modify, write back: what Braze holds beyond the console's fields (ids,
            # fields this code does not know) goes back unchanged.
            current = client.scim_user_get(user_id=identifier)
            fields["permissions"] = permissions_for_write(
                payload["permissions"], current.permissions
            )
            user = client.scim_user_update(user_id=identifier, keep=current.raw, **fields)
        # Only the id: names and emails stay out of the chained audit data.
        return {"id": user.id}


class ConsoleRoleApplier(ConsoleUserApplier):
    """A console user's roles, set in the console's database once another Admin approves.

    The payload and snapshots are `{"roles": [sorted role names]}`: the whole set, so the
    conflict check notices any role change made since the proposal.
    """

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        return console_user_roles_snapshot(user_id=int(identifier))

    def apply_local(self, *, change_request: Any, actor: Any) -> dict[str, Any]:
        return user_roles_apply_approved(actor=actor, change_request=change_request)


class WorkspaceRoleApplier(ConsoleUserApplier):
    """A console user's roles in one workspace, set in the console's database once another
    Admin approves. The request's workspace is the one changed: the apply step runs inside
    it (``workspace_override``), so ``read_current`` reads that workspace's roles.

    Snapshots are ``{"same_as_console_wide": bool, "roles": [sorted role names]}``."""

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        return console_user_workspace_roles_snapshot(
            user_id=int(identifier), workspace=workspace_active().key
        )

    def apply_local(self, *, change_request: Any, actor: Any) -> dict[str, Any]:
        return user_workspace_roles_apply_approved(actor=actor, change_request=change_request)


def _roles_said(state: dict[str, Any] | None, console_wide: list[str]) -> str:
    if not state or state.get("same_as_console_wide", True):
        held = ", ".join(console_wide) or "no role"
        return f"the same as their console-wide roles ({held})"
    return f"{', '.join(state.get('roles', [])) or 'no role'}, in this workspace only"


def workspace_role_review_notes(cr: ChangeRequest) -> list[str]:
    """The change in words above the diff: which workspace, and the roles before and after."""
    try:
        found = workspace_get(cr.workspace)
        where = f"{found.label} ({found.key})"
        production = found.production
    except LookupError:
        where, production = cr.workspace, False
    user = User.objects.filter(pk=int(cr.identifier)).first()
    console_wide = console_user_role_names(user=user) if user is not None else []
    notes = [f"Workspace: {where}" + (", a production workspace." if production else ".")]
    notes.append(f"Before: {_roles_said(cr.base_snapshot, console_wide)}.")
    notes.append(f"After: {_roles_said(cr.payload, console_wide)}.")
    return notes


def register() -> None:
    resource_type_register(
        ResourceType(
            key=RESOURCE_TYPE,
            label="Dashboard user",
            applier=DashboardUserApplier(),
            identifiers=IDENTIFIERS,
            # Dashboard accounts are access control, not content: Admins propose them, and
            # another Admin approves. Their requests carry staff names, emails and Braze
            # permissions, which only Admins and Auditors read (a Reviewer could not approve
            # what they may not see).
            propose=Capability.MANAGE_USERS,
            review=Capability.MANAGE_USERS,
            view=frozenset({Capability.MANAGE_USERS, Capability.AUDIT}),
            personal_fields=frozenset({"email", "given_name", "family_name"}),
        )
    )
    roles = ConsoleRoleApplier()
    resource_type_register(
        ResourceType(
            key=ROLES_RESOURCE_TYPE,
            label="Console user roles",
            applier=roles,
            identifiers=ROLES_IDENTIFIERS,
            propose=Capability.MANAGE_USERS,
            review=Capability.MANAGE_USERS,
            # Names of console users and who may do what: the audience of the access review.
            view=frozenset({Capability.MANAGE_USERS, Capability.AUDIT}),
            apply_local=roles.apply_local,
            lock=roles.lock,
            concerns_console_user=True,
        )
    )
    scoped = WorkspaceRoleApplier()
    resource_type_register(
        ResourceType(
            key=WORKSPACE_ROLES_RESOURCE_TYPE,
            label="Console user roles in a workspace",
            applier=scoped,
            identifiers=WORKSPACE_ROLES_IDENTIFIERS,
            propose=Capability.MANAGE_USERS,
            review=Capability.MANAGE_USERS,
            view=frozenset({Capability.MANAGE_USERS, Capability.AUDIT}),
            review_notes=workspace_role_review_notes,
            apply_local=scoped.apply_local,
            lock=scoped.lock,
            concerns_console_user=True,
        )
    )
