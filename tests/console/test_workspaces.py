"""Workspaces come from configuration: several by name, or today's single-workspace variables."""

import os
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from console.logs import mask_secrets
from console.secrets import secret_values
from console.workspaces import workspace_default, workspace_get, workspaces_from_env
from tests.fixtures.canary import CANARIES, find_canary


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


def _secrets_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "workspaces.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


TWO = {
    "BRAZE_WORKSPACES": "staging,production",
    "BRAZE_STAGING_REST_ENDPOINT": "US-01",
    "BRAZE_PRODUCTION_REST_ENDPOINT": "US-02",
}


def test_a_secrets_file_gives_each_named_workspace_its_key_and_token(tmp_path: Path) -> None:
    path = _secrets_file(
        tmp_path,
        '[staging]\napi_key = "staging-key-0123456789"\n\n'
        '[production]\napi_key = "production-key-0123456789"\nscim_token = "prod-scim-01234"\n',
    )

    staging, production = workspaces_from_env({**TWO, "BRAZE_WORKSPACES_FILE": str(path)})

    assert (staging.api_key, staging.scim_token) == ("staging-key-0123456789", "")
    assert (production.api_key, production.scim_token) == (
        "production-key-0123456789",
        "prod-scim-01234",
    )
    assert production.rest_endpoint == "US-02"


def test_a_secrets_file_serves_the_single_workspace_set_up_too(tmp_path: Path) -> None:
    path = _secrets_file(tmp_path, '[acme]\napi_key = "acme-key-0123456789"\n')

    (only,) = workspaces_from_env({"BRAZE_WORKSPACE": "acme", "BRAZE_WORKSPACES_FILE": str(path)})

    assert only.api_key == "acme-key-0123456789"


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ('[staging]\napi_key = "k-0123456789"\n', 0o640, "may be read by others"),
        ('[staging]\napi_key = "k-0123456789"\n', 0o604, "may be read by others"),
        ('[staging]\nrest_endpoint = "US-09"\n', 0o600, r"only \['api_key', 'scim_token'\]"),
        ('[stagign]\napi_key = "k-0123456789"\n', 0o600, r"names workspaces \['stagign'\]"),
        ("[staging]\napi_key = 12345678901\n", 0o600, "must be strings"),
        ('api_key = "k-0123456789"\n', 0o600, "must be a table"),
        ('[staging]\napi_key = "k-0123456789\n', 0o600, "is not valid TOML"),
    ],
)
def test_a_bad_secrets_file_is_refused_without_showing_its_values(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    path = _secrets_file(tmp_path, text, mode)

    with pytest.raises(ImproperlyConfigured, match=message) as refused:
        workspaces_from_env({**TWO, "BRAZE_WORKSPACES_FILE": str(path)})

    assert "k-0123456789" not in str(refused.value)
    assert refused.value.__cause__ is None


def test_a_missing_secrets_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        workspaces_from_env({**TWO, "BRAZE_WORKSPACES_FILE": str(tmp_path / "absent.toml")})


def test_a_secret_given_in_both_the_environment_and_the_file_is_refused(tmp_path: Path) -> None:
    path = _secrets_file(tmp_path, '[production]\napi_key = "from-the-file-0123"\n')

    with pytest.raises(ImproperlyConfigured, match="'production': api_key is set both"):
        workspaces_from_env(
            {
                **TWO,
                "BRAZE_PRODUCTION_API_KEY": "from-the-environment",
                "BRAZE_WORKSPACES_FILE": str(path),
            }
        )


def test_every_workspace_s_key_and_token_are_masked_secrets(settings: Settings) -> None:
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            **TWO,
            "BRAZE_STAGING_API_KEY": "staging-key-0123456789",
            "BRAZE_PRODUCTION_API_KEY": "production-key-0123456789",
            "BRAZE_PRODUCTION_SCIM_TOKEN": "prod-scim-token-0123",
        }
    )

    found = secret_values()

    assert {
        "staging-key-0123456789",
        "production-key-0123456789",
        "prod-scim-token-0123",
    } <= set(found)
    assert (
        "production-key-0123456789"
        not in mask_secrets({"note": "key production-key-0123456789 used"}, found)["note"]
    )


def test_the_canary_guard_watches_a_second_workspace_s_secrets() -> None:
    assert find_canary(f"x {CANARIES.production_api_key} y") == "production API key"
    assert find_canary(CANARIES.production_scim_token) == "production SCIM token"
    (_, production) = workspaces_from_env(
        {**TWO, "BRAZE_PRODUCTION_API_KEY": os.environ["BRAZE_PRODUCTION_API_KEY"]}
    )
    assert production.api_key == CANARIES.production_api_key
