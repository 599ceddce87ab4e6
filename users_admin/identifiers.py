"""The keys of the Users section's change requests, and how they name what does not exist yet.

Kept apart from appliers.py so that services and selectors can name them while the appliers,
which call those services, sit above them."""

RESOURCE_TYPE = "dashboard_user"
# A dashboard account not created yet: `new:<token>` (random, never the email, because
# identifiers are written into the chained, not erasable, part of the audit trail).
NEW_PREFIX = "new:"
# Grants of Reviewer or Admin to a console user (identifier: the user's id).
ROLES_RESOURCE_TYPE = "console_role"
