"""How approved change requests reach Braze dashboard users (SCIM).

Identifiers: the SCIM user id for updates and removals, and `new:<token>` for an account
not created yet. The token is random rather than the email, because identifiers are
written into the chained (not erasable) part of the audit trail.
Snapshots leave out `lastSignInAt` (a sign-in is not a conflicting change) and the
`appGroupId`/`teamId` Braze adds to what was named by name.
"""

import hashlib
from typing import Any

from console.audit.hashing import canonical_json
from console.braze import BrazeNotFound, get_client
from console.braze.client import ScimUser
from console.changes.appliers import merge_state
from console.changes.diff import same
from console.roles import Capability

RESOURCE_TYPE = "dashboard_user"
NEW_PREFIX = "new:"


def normal_permissions(permissions: dict[str, Any]) -> dict[str, Any]:
    groups = []
    for group in permissions.get("appGroup") or []:
        out: dict[str, Any] = {}
        if group.get("appGroupName"):
            out["appGroupName"] = group["appGroupName"]
        else:
            out["appGroupId"] = group.get("appGroupId", "")
        out["appGroupPermissions"] = sorted(group.get("appGroupPermissions") or [])
        teams = [
            {
                "teamName": team.get("teamName") or team.get("teamId", ""),
                "teamPermissions": sorted(team.get("teamPermissions") or []),
            }
            for team in group.get("team") or []
        ]
        if teams:
            out["team"] = teams
        groups.append(out)
    return {
        "companyPermissions": sorted(permissions.get("companyPermissions") or []),
        "appGroup": groups,
    }


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
    label = "Dashboard user"
    # Dashboard accounts are access control, not content: Admins propose them.
    propose_capability = Capability.MANAGE_USERS
    # Kept out of the hash chain's readable data so they can be erased on request.
    personal_fields = frozenset({"email", "given_name", "family_name"})

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        if identifier.startswith(NEW_PREFIX):
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
            user = client.scim_user_create(email=payload["email"], **fields)
        else:
            user = client.scim_user_update(user_id=identifier, **fields)
        # Only the id: names and emails stay out of the chained audit data.
        return {"id": user.id}


def register() -> None:
    from console.changes.appliers import register_applier

    register_applier(RESOURCE_TYPE, DashboardUserApplier())
