"""Workspaces come from configuration: several by name, or today's single-workspace variables."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from console.workspaces import workspace_default, workspace_get, workspaces_from_env


def test_without_a_list_the_single_workspace_variables_make_one_workspace() -> None:
    (only,) = workspaces_from_env(
        {"BRAZE_REST_ENDPOINT": "US-05", "BRAZE_API_KEY": "k" * 32, "BRAZE_WORKSPACE": "acme"}
    )

    assert (only.key, only.label, only.rest_endpoint, only.production) == (
        "acme",
        "Acme",
        "US-05",
        False,
    )
    assert only.api_key == "k" * 32


def test_named_workspaces_read_their_own_variables_in_order() -> None:
    staging, production = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging, production",
            "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9400",
            "BRAZE_STAGING_API_KEY": "s" * 32,
            "BRAZE_PRODUCTION_REST_ENDPOINT": "US-03",
            "BRAZE_PRODUCTION_API_KEY": "p" * 32,
            "BRAZE_PRODUCTION_LABEL": "Production (US)",
            "BRAZE_PRODUCTION_PRODUCTION": "1",
        }
    )

    assert (staging.key, staging.production, staging.api_key) == ("staging", False, "s" * 32)
    assert (production.label, production.rest_endpoint, production.production) == (
        "Production (US)",
        "US-03",
        True,
    )


def test_secrets_stay_out_of_the_repr() -> None:
    (only,) = workspaces_from_env(
        {"BRAZE_API_KEY": "brz-secret-value", "BRAZE_SCIM_TOKEN": "t" * 20}
    )

    assert "brz-secret-value" not in repr(only)
    assert "t" * 20 not in repr(only)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BRAZE_WORKSPACES": "staging"}, "BRAZE_STAGING_REST_ENDPOINT is not set"),
        ({"BRAZE_WORKSPACES": "Prod"}, "Workspace name 'Prod'"),
        (
            {"BRAZE_WORKSPACES": "a,a", "BRAZE_A_REST_ENDPOINT": "US-01"},
            "names a workspace twice",
        ),
    ],
)
def test_a_bad_configuration_is_refused_with_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        workspaces_from_env(env)


def test_the_first_configured_workspace_is_the_default_and_others_are_found_by_name(
    settings: Settings,
) -> None:
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging,production",
            "BRAZE_STAGING_REST_ENDPOINT": "US-01",
            "BRAZE_PRODUCTION_REST_ENDPOINT": "US-02",
        }
    )

    assert workspace_default().key == "staging"
    assert workspace_get("production").rest_endpoint == "US-02"
    with pytest.raises(LookupError):
        workspace_get("missing")
