import pytest
from django.core.exceptions import ValidationError

from users_admin import scim_rules
from users_admin.scim_rules import WorkspacePermissions


def test_it_reads_one_workspace_per_line() -> None:
    parsed = scim_rules.parse_workspace_lines(
        "demo: basic_access, send_campaigns_canvases\n\nStaging: view_pii"
    )
    assert parsed == [
        WorkspacePermissions("demo", ("basic_access", "send_campaigns_canvases")),
        WorkspacePermissions("Staging", ("view_pii",)),
    ]


def test_it_refuses_a_permission_name_braze_does_not_document() -> None:
    with pytest.raises(ValidationError) as info:
        scim_rules.parse_workspace_lines("demo: basic_access, send_everything")
    assert "send_everything is not a Braze workspace permission" in str(info.value)


def test_it_refuses_a_line_without_a_workspace_name() -> None:
    with pytest.raises(ValidationError, match="workspace name, a colon"):
        scim_rules.parse_workspace_lines("basic_access")


def test_it_refuses_a_workspace_with_no_permissions() -> None:
    with pytest.raises(ValidationError, match="appGroupPermissions"):
        scim_rules.parse_workspace_lines("demo:")


def test_it_refuses_the_same_workspace_twice() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        scim_rules.parse_workspace_lines("demo: basic_access\nDEMO: view_pii")


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
            {"appGroupName": "demo", "appGroupPermissions": ["basic_access"],
             "team": [{"teamId": "t1", "teamName": "Shoes", "teamPermissions": ["admin"]}]},
            {"appGroupName": "old", "appGroupPermissions": ["basic_access"],
             "team": [{"teamName": "Gone", "teamPermissions": ["admin"]}]},
        ]
    }  # fmt: skip
    result = scim_rules.permissions_object(
        company=["manage_company_settings"],
        workspaces=[WorkspacePermissions("Demo", ("view_pii",))],
        base=base,
    )
    assert result == {
        "companyPermissions": ["manage_company_settings"],
        "appGroup": [
            {"appGroupName": "Demo", "appGroupPermissions": ["view_pii"],
             "team": [{"teamName": "Shoes", "teamPermissions": ["admin"]}]},
        ],
    }  # fmt: skip


def test_the_summary_lists_company_workspace_and_team_permissions() -> None:
    summary = scim_rules.permissions_summary(
        {"companyPermissions": ["admin"],
         "appGroup": [{"appGroupName": "demo", "appGroupPermissions": ["basic_access"],
                       "team": [{"teamName": "Shoes", "teamPermissions": ["admin"]}]}]}
    )  # fmt: skip
    assert summary == "company: admin; demo: basic_access; demo / team Shoes: admin"
