import pytest
from django.core.exceptions import ValidationError

from users_admin import scim_rules
from users_admin.scim_rules import WorkspacePermissions


def test_it_reads_one_workspace_per_line() -> None:
    parsed = scim_rules.parse_workspace_lines(
        "demo: view_campaigns, edit_campaigns\n\nStaging: view_segments"
    )
    assert parsed == [
        WorkspacePermissions("demo", ("view_campaigns", "edit_campaigns")),
        WorkspacePermissions("Staging", ("view_segments",)),
    ]


def test_it_refuses_a_permission_name_braze_does_not_document() -> None:
    with pytest.raises(ValidationError) as info:
        scim_rules.parse_workspace_lines("demo: view_campaigns, send_everything")
    assert "send_everything is not a Braze workspace permission" in str(info.value)


def test_granular_names_are_offered_and_accepted_by_default() -> None:
    names = scim_rules.workspace_permission_names(scim_rules.GRANULAR)
    assert {"view_campaigns", "edit_campaigns", "launch_canvases", "edit_catalogs"} <= set(names)
    assert "basic_access" not in names
    parsed = scim_rules.parse_workspace_lines("demo: view_campaigns, launch_canvases")
    assert parsed == [WorkspacePermissions("demo", ("view_campaigns", "launch_canvases"))]


def test_a_new_legacy_name_is_refused_in_granular_mode_with_the_end_date() -> None:
    with pytest.raises(ValidationError) as info:
        scim_rules.parse_workspace_lines("demo: view_campaigns, basic_access")
    message = str(info.value)
    assert "basic_access is a legacy Braze permission name" in message
    assert "stops accepting in December 2026" in message
    assert "view_campaigns, edit_campaigns" in message  # what to use instead


def test_legacy_names_are_accepted_in_legacy_mode_and_granular_ones_refused() -> None:
    parsed = scim_rules.parse_workspace_lines(
        "demo: basic_access, view_pii", mode=scim_rules.LEGACY
    )
    assert parsed == [WorkspacePermissions("demo", ("basic_access", "view_pii"))]
    assert "basic_access" in scim_rules.workspace_permission_names(scim_rules.LEGACY)
    with pytest.raises(ValidationError, match="view_campaigns is a granular Braze permission"):
        scim_rules.parse_workspace_lines("demo: view_campaigns", mode=scim_rules.LEGACY)


def test_names_the_account_already_holds_are_kept_in_either_mode() -> None:
    # Read from Braze: a legacy name, and one newer than the console's lists.
    base = {
        "appGroup": [
            {"appGroupName": "demo", "appGroupPermissions": ["basic_access", "use_new_feature"]}
        ]
    }
    parsed = scim_rules.parse_workspace_lines(
        "DEMO: basic_access, use_new_feature, view_campaigns", base=base
    )
    assert parsed == [
        WorkspacePermissions("DEMO", ("basic_access", "use_new_feature", "view_campaigns"))
    ]
    # Held in another workspace does not count.
    with pytest.raises(ValidationError, match="basic_access is a legacy"):
        scim_rules.parse_workspace_lines("staging: basic_access", base=base)


def test_a_workspace_given_through_a_permission_set_may_list_no_names() -> None:
    base = {
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissionSets": [{"appGroupPermissionSetName": "Agency"}],
            }
        ]
    }
    assert scim_rules.parse_workspace_lines("demo:", base=base) == [
        WorkspacePermissions("demo", ())
    ]


def test_legacy_names_read_from_braze_are_marked() -> None:
    permissions = {
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissions": ["basic_access", "edit_segments"],
                "team": [{"teamName": "Shoes", "teamPermissions": ["view_campaigns", "admin"]}],
            }
        ]
    }
    # edit_segments is a name of both sets: not legacy.
    assert scim_rules.legacy_names(permissions) == ["basic_access", "admin"]


def test_it_refuses_a_line_without_a_workspace_name() -> None:
    with pytest.raises(ValidationError, match="workspace name, a colon"):
        scim_rules.parse_workspace_lines("basic_access")


def test_it_refuses_a_workspace_with_no_permissions() -> None:
    with pytest.raises(ValidationError, match="appGroupPermissions"):
        scim_rules.parse_workspace_lines("demo:")


def test_it_refuses_the_same_workspace_twice() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        scim_rules.parse_workspace_lines("demo: view_campaigns\nDEMO: view_segments")


@pytest.mark.parametrize("email", ["", "ada", "ada@example", "a da@example.com", "@example.com"])
def test_it_refuses_what_braze_would_not_take_as_a_username(email: str) -> None:
    with pytest.raises(ValidationError, match="valid email address"):
        scim_rules.check_email(email)


def test_a_blank_name_is_refused_with_the_scim_field_named() -> None:
    with pytest.raises(ValidationError, match=r"name\.givenName"):
        scim_rules.check_name("   ", "givenName")


def test_teams_of_a_kept_workspace_are_carried_over() -> None:
    base = {
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissions": ["basic_access"],
                "team": [{"teamId": "t1", "teamName": "Shoes", "teamPermissions": ["admin"]}],
            },
            {
                "appGroupName": "old",
                "appGroupPermissions": ["basic_access"],
                "team": [{"teamName": "Gone", "teamPermissions": ["admin"]}],
            },
        ]
    }
    result = scim_rules.permissions_object(
        company=["manage_company_settings"],
        workspaces=[WorkspacePermissions("Demo", ("view_pii",))],
        base=base,
    )
    # The workspace keeps the name Braze holds it under.
    assert result == {
        "companyPermissions": ["manage_company_settings"],
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissions": ["view_pii"],
                "team": [{"teamName": "Shoes", "teamPermissions": ["admin"]}],
            },
        ],
    }


BRAZE_ACCOUNT = {
    "companyPermissions": ["admin"],
    "roles": [
        {
            "roleName": "Content Editor",
            "roleId": "r1",
            "appGroup": [{"appGroupName": "demo", "appGroupPermissions": ["edit_campaigns"]}],
        }
    ],
    "appGroup": [
        {
            "appGroupId": "w1",
            "appGroupName": "demo",
            "appGroupPermissions": ["view_campaigns"],
            "appGroupPermissionSets": [
                {
                    "appGroupPermissionSetName": "Editors",
                    "appGroupPermissionSetId": "s1",
                    "permissions": ["edit_campaigns"],
                }
            ],
            "team": [
                {
                    "teamId": "t1",
                    "teamName": "Shoes",
                    "teamPermissions": ["view_campaigns"],
                    "teamColour": "blue",
                }
            ],
            "appGroupNote": "kept",
        },
        {"appGroupId": "w2", "appGroupPermissions": ["view_segments"]},
    ],
    "futureField": {"a": 1},
}


def test_an_edit_keeps_roles_permission_sets_and_teams_in_the_snapshot_form() -> None:
    result = scim_rules.permissions_object(
        company=["admin"],
        workspaces=[
            WorkspacePermissions("demo", ("view_campaigns", "launch_campaigns")),
            WorkspacePermissions("w2", ("view_segments",)),
        ],
        base=BRAZE_ACCOUNT,
    )
    assert result == {
        "companyPermissions": ["admin"],
        "roles": [{"roleName": "Content Editor"}],
        "appGroup": [
            {
                "appGroupName": "demo",
                "appGroupPermissions": ["launch_campaigns", "view_campaigns"],
                "appGroupPermissionSets": [{"appGroupPermissionSetName": "Editors"}],
                "team": [{"teamName": "Shoes", "teamPermissions": ["view_campaigns"]}],
            },
            {"appGroupId": "w2", "appGroupPermissions": ["view_segments"]},
        ],
    }


def test_what_is_written_back_keeps_everything_braze_holds_that_the_console_does_not_edit() -> None:
    desired = scim_rules.permissions_object(
        company=["admin"],
        workspaces=[
            WorkspacePermissions("demo", ("view_campaigns", "launch_campaigns")),
            WorkspacePermissions("w2", ("view_segments",)),
        ],
        base=BRAZE_ACCOUNT,
    )
    assert scim_rules.permissions_for_write(desired, BRAZE_ACCOUNT) == {
        "futureField": {"a": 1},
        "companyPermissions": ["admin"],
        # Roles and sets are named, not described: what they grant is Braze's definition.
        "roles": [{"roleName": "Content Editor", "roleId": "r1"}],
        "appGroup": [
            {
                "appGroupNote": "kept",
                "appGroupName": "demo",
                "appGroupId": "w1",
                "appGroupPermissions": ["launch_campaigns", "view_campaigns"],
                "appGroupPermissionSets": [
                    {"appGroupPermissionSetName": "Editors", "appGroupPermissionSetId": "s1"}
                ],
                "team": [
                    {
                        "teamColour": "blue",
                        "teamName": "Shoes",
                        "teamId": "t1",
                        "teamPermissions": ["view_campaigns"],
                    }
                ],
            },
            {"appGroupId": "w2", "appGroupPermissions": ["view_segments"]},
        ],
    }


def test_the_summary_lists_company_workspace_and_team_permissions() -> None:
    summary = scim_rules.permissions_summary(
        {
            "companyPermissions": ["admin"],
            "appGroup": [
                {
                    "appGroupName": "demo",
                    "appGroupPermissions": ["basic_access"],
                    "team": [{"teamName": "Shoes", "teamPermissions": ["admin"]}],
                }
            ],
        }
    )
    assert summary == "company: admin; demo: basic_access; demo / team Shoes: admin"
