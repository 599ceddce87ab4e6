"""The audit trail's vocabulary: every action an entry can record, and the personal data it keeps.

Every writer names its action with one of these constants, so searching for a name finds who
records it. The values are stored in entries and hashed into the chain: never change one
(old entries keep the old value); add a new name instead. Plain constants, no Django: the
chain walk (chainwalk.py) reads them in worker processes too.
"""

from typing import Final

# --- Sign-in and sessions (console/audit/signals.py, console/signin.py, console/sessions.py) ---
AUTH_SIGN_IN: Final = "auth.sign_in"
AUTH_SIGN_OUT: Final = "auth.sign_out"
AUTH_SIGN_IN_FAILED: Final = "auth.sign_in_failed"
# One summary entry for many failures from one source (the throttle's window).
AUTH_SIGN_IN_FAILURES: Final = "auth.sign_in_failures"
AUTH_SESSION_ENDED: Final = "auth.session_ended"
# A local password sign-in by an Admin while single sign-on is on (sso/).
AUTH_BREAK_GLASS_SIGN_IN: Final = "auth.break_glass_sign_in"

# --- Second factor (mfa/) ---
MFA_DEVICE_ADDED: Final = "mfa.device_added"
MFA_DEVICE_REMOVED: Final = "mfa.device_removed"
MFA_DEVICES_RESET: Final = "mfa.devices_reset"
MFA_RECOVERY_CODES_ISSUED: Final = "mfa.recovery_codes_issued"
MFA_RECOVERY_CODE_USED: Final = "mfa.recovery_code_used"
MFA_FAILED: Final = "mfa.failed"

# --- Single sign-on (sso/) ---
SSO_USER_CREATED: Final = "sso.user_created"
SSO_ROLES_CHANGED: Final = "sso.roles_changed"

# --- The trail itself (console/audit/) ---
# The first entry hashed with the chain key, when older entries were hashed without one;
# its data names the last entry of the old rule (a trail begun keyed has no boundary).
AUDIT_CHAIN_KEYED: Final = "audit.chain_keyed"
AUDIT_EXPORTED: Final = "audit.exported"
AUDIT_PERSONAL_ERASED: Final = "audit.personal_erased"
AUDIT_PERSONAL_LOOKED_UP: Final = "audit.personal_looked_up"
AUDIT_VERIFY_REQUESTED: Final = "audit.verify_requested"
AUDIT_VERIFIED: Final = "audit.verified"

# --- Change requests (console/changes/) ---
CHANGE_REQUEST_PROPOSED: Final = "change_request.proposed"
CHANGE_REQUEST_SUBMITTED: Final = "change_request.submitted"
CHANGE_REQUEST_EDITED: Final = "change_request.edited"
CHANGE_REQUEST_COMMENTED: Final = "change_request.commented"
CHANGE_REQUEST_APPROVED: Final = "change_request.approved"
CHANGE_REQUEST_APPROVE_REFUSED: Final = "change_request.approve_refused"
CHANGE_REQUEST_REJECTED: Final = "change_request.rejected"
CHANGE_REQUEST_REJECT_REFUSED: Final = "change_request.reject_refused"
CHANGE_REQUEST_CANCELLED: Final = "change_request.cancelled"
CHANGE_REQUEST_RETRY_REQUESTED: Final = "change_request.retry_requested"
CHANGE_REQUEST_SCHEDULED: Final = "change_request.scheduled"
CHANGE_REQUEST_UNSCHEDULED: Final = "change_request.unscheduled"
CHANGE_REQUEST_APPLYING: Final = "change_request.applying"
CHANGE_REQUEST_APPLY_REFUSED: Final = "change_request.apply_refused"
CHANGE_REQUEST_APPLIED: Final = "change_request.applied"
CHANGE_REQUEST_CONFLICT: Final = "change_request.conflict"
CHANGE_REQUEST_FAILED: Final = "change_request.failed"
# The request sent to Braze while applying a change (beside the request's own entry).
BRAZE_WRITE: Final = "braze.write"
# One part of a bundle change request (bundles/): its outcome, beside the request's own entry.
BUNDLE_PART_APPLIED: Final = "bundle.part_applied"
BUNDLE_PART_FAILED: Final = "bundle.part_failed"
BUNDLE_PART_WAITING: Final = "bundle.part_waiting"
# A promotion: one bundle change request in the target workspace, from another workspace.
BUNDLE_PROMOTED: Final = "bundle.promoted"
POLICY_CHANGED: Final = "policy.changed"
# A person's choice of which change-request notifications reach them (console/notifications/).
NOTIFICATIONS_PREFERENCES_CHANGED: Final = "notifications.preferences_changed"

# --- Catalogs (catalogs/) ---
CATALOG_LIST_REFRESH_REQUESTED: Final = "catalog.list_refresh_requested"
CATALOG_SYNC_REQUESTED: Final = "catalog.sync_requested"
CATALOG_SYNCED: Final = "catalog.synced"
# Differences a sync finds, made outside the console.
CATALOG_ITEM_EXTERNAL_ADDED: Final = "catalog_item.external_added"
CATALOG_ITEM_EXTERNAL_CHANGED: Final = "catalog_item.external_changed"
CATALOG_ITEM_EXTERNAL_REMOVED: Final = "catalog_item.external_removed"

# --- Bulk catalog jobs (catalogs/bulk/) ---
CATALOG_BULK_UPLOADED: Final = "catalog_bulk.uploaded"
CATALOG_BULK_APPROVED_START: Final = "catalog_bulk.approved_start"
CATALOG_BULK_STARTED: Final = "catalog_bulk.started"
CATALOG_BULK_PAUSED: Final = "catalog_bulk.paused"
CATALOG_BULK_RESUMED: Final = "catalog_bulk.resumed"
CATALOG_BULK_FINISHED: Final = "catalog_bulk.finished"
CATALOG_BULK_CANCELLED: Final = "catalog_bulk.cancelled"
CATALOG_BULK_READ_BACK: Final = "catalog_bulk.read_back"
CATALOG_BULK_RETRY_FAILED: Final = "catalog_bulk.retry_failed"
CATALOG_BULK_RETRY_APPROVAL_REQUESTED: Final = "catalog_bulk.retry_approval_requested"
CATALOG_BULK_RETRY_NOT_APPROVED: Final = "catalog_bulk.retry_not_approved"

# --- Content (templates_app/) ---
CONTENT_EXTERNAL_CHANGE: Final = "content.external_change"
# The people and settings previews render with (templates_app/preview).
PREVIEW_PROFILE_CREATE: Final = "preview_profile.create"
PREVIEW_PROFILE_UPDATE: Final = "preview_profile.update"
PREVIEW_PROFILE_DELETE: Final = "preview_profile.delete"
PREVIEW_SETTINGS_UPDATE: Final = "preview_settings.update"
# One look-up of an existing Braze user to preview as (the external id is kept erasable).
PREVIEW_BRAZE_USER_LOOKUP: Final = "preview.braze_user_lookup"
PREFERENCE_CENTER_USER_URL: Final = "preference_center.user_url"

# --- Console users and access reviews (users_admin/) ---
USER_INVITED: Final = "user.invited"
USER_INVITATION_RESENT: Final = "user.invitation_resent"
USER_ROLES_CHANGED: Final = "user.roles_changed"
# The roles someone holds in one workspace (the entry names the workspace).
USER_WORKSPACE_ROLES_CHANGED: Final = "user.workspace_roles_changed"
USER_DEACTIVATED: Final = "user.deactivated"
USER_REACTIVATED: Final = "user.reactivated"
ACCESS_REVIEW_EXPORTED: Final = "access_review.exported"

# Differences a sync found between Braze and what the console last saw or wrote: changes
# made in Braze outside the console (the home page's "since I last looked").
EXTERNAL_CHANGES: Final = frozenset(
    {
        CATALOG_ITEM_EXTERNAL_ADDED,
        CATALOG_ITEM_EXTERNAL_CHANGED,
        CATALOG_ITEM_EXTERNAL_REMOVED,
        CONTENT_EXTERNAL_CHANGE,
    }
)


# The kinds of personal data entries keep in their erasable part, by the key they are
# stored under: users_admin (console and dashboard users), failed sign-ins (the typed
# username) and preference-center links (a Braze external id).
ERASABLE_FIELDS: Final[dict[str, str]] = {
    "email": "Email address",
    "username": "Username",
    "given_name": "Given name",
    "family_name": "Family name",
    "external_id": "Braze external user id",
}


def erasable_value(*, field: str, value: str) -> str:
    """The form a value is matched and digested in (email addresses ignore case)."""
    value = value.strip()
    return value.lower() if field == "email" else value
