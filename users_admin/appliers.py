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

from console.audit.hashing import canonical_json
from console.braze import BrazeNotFound, get_client
from console.braze.client import ScimUser
from console.changes.appliers import ConsoleUserApplier, merge_state
from console.changes.diff import same
from console.changes.resource_types import ResourceType, resource_type_register
from console.roles import Capability
from users_admin.identifiers import (
    IDENTIFIERS,
    RESOURCE_TYPE,
    ROLES_IDENTIFIERS,
    ROLES_RESOURCE_TYPE,
)
from users_admin.scim_rules import normal_permissions, permissions_for_write
from users_admin.selectors import console_user_roles_snapshot
from users_admin.services import user_roles_apply_approved


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
