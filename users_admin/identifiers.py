"""The keys of the Users section's change requests, and how their identifiers are written.

Kept apart from appliers.py so that services and selectors can name them while the appliers,
which call those services, sit above them."""

from console.changes.resource_types import Identifiers

RESOURCE_TYPE = "dashboard_user"
# A dashboard account not created yet is `new:<token>` (random, never the email, because
# identifiers are written into the chained, not erasable, part of the audit trail).
IDENTIFIERS = Identifiers("new:{token}", "{scim_id}")
# Grants of Reviewer or Admin to a console user (identifier: the user's id).
ROLES_RESOURCE_TYPE = "console_role"
ROLES_IDENTIFIERS = Identifiers("{user}")
# A console user's roles in one workspace: the request's workspace is the one changed, and the
# identifier the user's id (so "a change about your own account" is told as for console roles).
WORKSPACE_ROLES_RESOURCE_TYPE = "workspace_role"
WORKSPACE_ROLES_IDENTIFIERS = Identifiers("{user}")
