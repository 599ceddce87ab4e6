"""SCIM permission strings Braze accepts, and the demo company's roles and permission sets.

Reference: "SCIM API objects and appendix" (_docs/_api/objects_filters/scim_api_appendix.md),
its Granular SCIM API tab (_includes/permissions_temp/granular_scim.md) and its Legacy SCIM API
tab (_includes/permissions_temp/legacy_scim.md). Kept apart from the console's own copy in
users_admin/scim_rules.py: the sandbox referees the console, so it does not share its lists.
"""

from __future__ import annotations

import uuid
from typing import Any

LEGACY_WORKSPACE: frozenset[str] = frozenset(
    {
        "admin",
        "basic_access",
        "approve_deny_campaigns",
        "send_campaigns_canvases",
        "publish_cards",
        "edit_segments",
        "export_user_data",
        "view_pii",
        "view_user_profile",
        "manage_dashboard_users",
        "manage_media_library",
        "view_usage_data",
        "import_update_user_data",
        "view_billing_details",
        "dev_console",
        "launch_content_blocks",
        "manage_external_integrations",
        "manage_apps",
        "manage_teams",
        "manage_events_attributes_purchases",
        "manage_tags",
        "manage_email_settings",
        "manage_subscription_groups",
        "manage_approval_settings",
        "manage_catalogs_dashboard_permission",
    }
)
LEGACY_TEAM: frozenset[str] = frozenset(
    {
        "admin",
        "basic_access",
        "approve_deny_campaigns",
        "send_campaigns_canvases",
        "publish_cards",
        "edit_segments",
        "export_user_data",
        "view_user_profile",
        "manage_dashboard_users",
        "manage_media_library",
    }
)

_BOTH: frozenset[str] = frozenset(
    {
        "view_campaigns",
        "edit_campaigns",
        "archive_campaigns",
        "view_canvases",
        "edit_canvases",
        "archive_canvases",
        "view_frequency_caps",
        "edit_frequency_caps",
        "view_message_prioritization",
        "edit_message_prioritization",
        "view_content_blocks",
        "view_feature_flags",
        "edit_feature_flags",
        "archive_feature_flags",
        "view_segments",
        "edit_segments",
        "edit_global_control_group",
        "view_iam_templates",
        "edit_iam_templates",
        "archive_iam_templates",
        "view_email_templates",
        "edit_email_templates",
        "archive_email_templates",
        "view_webhook_templates",
        "edit_webhook_templates",
        "archive_webhook_templates",
        "view_link_templates",
        "edit_link_templates",
        "view_media_library_assets",
        "view_locations",
        "edit_locations",
        "archive_locations",
        "view_promotion_codes",
        "edit_promotion_codes",
        "export_promotion_codes",
        "view_preference_centers",
        "edit_preference_centers",
        "edit_reports",
        "view_banner_templates",
        "view_multi_language_settings",
        "use_operator",
        "view_decisioning_studio_agents",
        "view_decisioning_studio_conversion_event",
        "launch_campaigns",
        "launch_canvases",
        "edit_dashboard_users",
    }
)
GRANULAR_WORKSPACE: frozenset[str] = _BOTH | {
    "edit_media_library_assets",
    "delete_media_library_asset",
    "view_import_users",
    "import_users",
    "edit_user_data",
    "view_api_keys",
    "edit_api_keys",
    "view_internal_user_groups",
    "edit_internal_user_groups",
    "view_message_activity_log",
    "view_event_user_log",
    "view_api_identifiers",
    "view_api_usage_dashboard",
    "view_api_limits",
    "view_api_usage_alerts",
    "edit_api_usage_alerts",
    "view_sdk_debugger",
    "edit_sdk_debugger",
    "launch_content_blocks",
    "edit_cloud_data_ingestion",
    "edit_app_settings",
    "view_push_settings",
    "edit_push_settings",
    "view_teams",
    "edit_teams",
    "archive_teams",
    "view_custom_attributes",
    "edit_custom_attributes",
    "blocklist_custom_attributes",
    "delete_custom_attributes",
    "export_custom_attributes",
    "view_custom_events",
    "edit_custom_events",
    "blocklist_custom_events",
    "delete_custom_events",
    "export_custom_events",
    "edit_custom_event_property_segmentation",
    "view_products",
    "edit_products",
    "blocklist_products",
    "edit_purchase_property_segmentation",
    "view_tags",
    "edit_tags",
    "delete_tags",
    "view_email_settings",
    "edit_email_settings",
    "view_catalogs",
    "edit_catalogs",
    "export_catalogs",
    "delete_catalogs",
}
GRANULAR_TEAM: frozenset[str] = _BOTH | {"view_reports", "create_reports"}

# Braze keeps accepting legacy strings after the migration until they are retired.
WORKSPACE_ACCEPTED = GRANULAR_WORKSPACE | LEGACY_WORKSPACE
TEAM_ACCEPTED = GRANULAR_TEAM | LEGACY_TEAM


def stable_id(kind: str, name: str, length: int = 24) -> str:
    """The id Braze would hold for a role, set, workspace or team the sandbox knows by name."""
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"{kind}:{name}").hex[:length]


# The demo company's roles and workspace permission sets: company-level objects a user only
# refers to. An answer describes them (the PUT page's example response), a request names them.
ROLES: dict[str, list[dict[str, Any]]] = {
    "Content Editor": [
        {
            "appGroupName": "demo",
            "appGroupPermissions": [
                "view_email_templates",
                "edit_email_templates",
                "view_content_blocks",
                "launch_content_blocks",
            ],
        }
    ],
    "Workspace Manager": [
        {
            "appGroupName": "demo",
            "appGroupPermissions": ["edit_dashboard_users", "view_teams", "edit_teams"],
        }
    ],
}
PERMISSION_SETS: dict[str, list[str]] = {
    "Agency Access": ["view_campaigns", "view_canvases", "view_segments"],
    "Campaign Editors": ["view_campaigns", "edit_campaigns", "launch_campaigns"],
}
