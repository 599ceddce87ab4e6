"""Optional error reporting to Sentry (or any service that accepts Sentry's protocol).

Off unless SENTRY_DSN is set. What leaves the host is scrubbed here: no secret (the Braze key,
the SCIM token, SECRET_KEY, the audit keys, Authorization and Cookie headers) and no personal
data (e-mail addresses, names: of the user only the id is sent; no request bodies, cookies
or local variables).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from console.logs import MASK, is_secret_key, mask_secrets
from console.secrets import secret_values

# The local part without "=", "&" and "|", so "q=ada@example.com" in a query string keeps its "q=".
EMAIL = re.compile(r"[A-Za-z0-9.!#$%'*+/?^_`{}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
EMAIL_MASK = "[email]"
# Request parts that carry personal data or credentials whatever their keys are called.
_DROPPED_REQUEST_PARTS = ("cookies", "data", "env")
# Keys whose values name or locate a person (the log context's "actor" and "ip" included).
_PERSONAL_KEY_PARTS = (
    "email",
    "first_name",
    "last_name",
    "full_name",
    "display_name",
    "given_name",
    "family_name",
    "username",
    "actor",
    "ip_address",
    "remote_addr",
)
_PERSONAL_KEYS = {"ip", "name"}
# Parts of an event that describe the SDK and the machine, never a person.
_MACHINE_PARTS = {"sdk", "contexts", "modules"}


def _is_personal_key(key: object) -> bool:
    name = str(key).lower()
    return name in _PERSONAL_KEYS or any(part in name for part in _PERSONAL_KEY_PARTS)


def _scrub(value: Any, secrets: list[str], people: re.Pattern[str] | None) -> Any:
    """Masks secrets and personal data: by key, and by value (``secrets``: the configured
    secrets; ``people``: who the current request or task is for, as whole words, as they may
    appear inside a message)."""
    if isinstance(value, str):
        value = EMAIL.sub(EMAIL_MASK, mask_secrets(value, secrets))
        return people.sub(MASK, value) if people is not None else value
    if isinstance(value, Mapping):
        scrubbed = {}
        for key, item in value.items():
            if (is_secret_key(key) or _is_personal_key(key)) and item not in (None, ""):
                scrubbed[key] = MASK
            else:
                scrubbed[key] = _scrub(item, secrets, people)
        return scrubbed
    if isinstance(value, list | tuple):
        return [_scrub(item, secrets, people) for item in value]
    return value


def _scrub_headers(headers: Any) -> Any:
    if isinstance(headers, Mapping):
        return {k: MASK if is_secret_key(k) else v for k, v in headers.items()}
    if isinstance(headers, list):  # [[name, value], ...]
        return [[k, MASK if is_secret_key(k) else v] for k, v in headers]
    return headers


def _log_context() -> dict[str, Any]:
    import structlog

    return structlog.contextvars.get_contextvars()


def _people() -> re.Pattern[str] | None:
    """The username and address of the current log context, as whole words."""
    context = _log_context()
    values = sorted({str(context[k]) for k in ("actor", "ip") if context.get(k)}, key=len)
    if not values:
        return None
    words = "|".join(re.escape(v) for v in reversed(values))
    return re.compile(rf"(?<![\w.@-])(?:{words})(?![\w@-]|\.\w)")


def before_send(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's ``before_send``: the event with secrets and personal data taken out, and the
    log context's request id (to find the event's log lines) and user id added."""
    context = _log_context()
    user = event.get("user")
    user_id = user.get("id") if isinstance(user, Mapping) else None
    if user_id is None:
        user_id = context.get("user_id")
    event["user"] = {"id": user_id} if user_id is not None else {}
    if context.get("request_id"):
        event.setdefault("tags", {})["request_id"] = context["request_id"]
    request = event.get("request")
    if isinstance(request, dict):
        for part in _DROPPED_REQUEST_PARTS:
            request.pop(part, None)
        if "headers" in request:
            request["headers"] = _scrub_headers(request["headers"])
    for frame_list in _stack_frames(event):
        for frame in frame_list:
            frame.pop("vars", None)
    secrets, people = secret_values(), _people()
    return {
        key: value if key in _MACHINE_PARTS else _scrub(value, secrets, people)
        for key, value in event.items()
    }


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    scrubbed: dict[str, Any] = _scrub(crumb, secret_values(), _people())
    return scrubbed


def _stack_frames(event: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    found = []
    for key in ("exception", "threads"):
        container = event.get(key)
        values = container.get("values", []) if isinstance(container, Mapping) else []
        for value in values:
            frames = (value.get("stacktrace") or {}).get("frames")
            if isinstance(frames, list):
                found.append(frames)
    return found


def error_reporting_init(
    *, dsn: str, environment: str = "", traces_sample_rate: float = 0.0, **options: Any
) -> bool:
    """Switch Sentry on when ``dsn`` is set (its Django, Celery and logging integrations are
    enabled by default); returns whether it is on. ``options`` go to ``sentry_sdk.init``."""
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        # What the integrations collect (this supersedes send_default_pii, which the SDK
        # deprecates): no user details, request bodies, frame variables or SQL parameters.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "stack_frame_variables": False,
            "database_query_data": False,
        },
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send,  # type: ignore[arg-type]
        before_breadcrumb=before_breadcrumb,
        traces_sample_rate=traces_sample_rate,
        **options,
    )
    return True
