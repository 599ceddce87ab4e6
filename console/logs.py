"""Structured logs: one JSON object a line in production, readable lines in development.

Every line carries the request's id (django-structlog's RequestMiddleware binds it, and its
Celery integration hands it to the tasks the request starts), the actor and the workspace.
Secrets never reach a handler: values under secret-bearing keys are masked, and the
configured secrets themselves are masked wherever they appear in a line.

Imported by the settings module, so nothing here reads Django settings at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from console.secrets import secret_values

MASK = "[redacted]"
# Key names (lower case, substrings) whose values are never logged.
SECRET_KEY_PARTS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "signature",
    "session",
    "csrf",
    "dsn",
)


def is_secret_key(key: object) -> bool:
    name = str(key).lower().replace("-", "_")
    return any(part in name for part in SECRET_KEY_PARTS)


def mask_secrets(value: Any, secrets: list[str]) -> Any:
    """``value`` with secret-bearing keys masked and known secret values replaced, recursively."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if is_secret_key(k) and v not in (None, "") else mask_secrets(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(mask_secrets(v, secrets) for v in value)
    if isinstance(value, bytes | bytearray):
        return mask_secrets(bytes(value).decode("utf-8", "replace"), secrets)
    return value


def redact_secrets(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every key and value of the line."""
    masked: EventDict = mask_secrets(dict(event_dict), secret_values())
    return masked


_STANDARD_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactSecretsFilter(logging.Filter):
    """Masks secrets in the record itself, so whatever else reads it after this handler (a
    test's log capture, the exception text) sees them masked too, not only this handler's line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        if isinstance(record.msg, str):
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: keep its parts, masked
                message = f"{record.msg} {record.args!r}"
            record.msg, record.args = mask_secrets(message, secrets), ()
        else:
            record.msg = mask_secrets(record.msg, secrets)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_RECORD_ATTRS and not name.startswith("_"):
                masked = MASK if is_secret_key(name) else mask_secrets(value, secrets)
                setattr(record, name, masked)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, secrets)
        return True


def add_workspace(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """The Braze workspace the line's work is in: with one workspace, the name its limiter
    shares with other consoles; with several, the key of the one being worked in (the
    request's, or the task's)."""
    # Lazy: settings configure logging before the apps (and the workspaces) are loaded.
    from django.conf import settings

    from console.workspaces import workspace_active, workspaces_all

    if settings.configured and "workspace" not in event_dict:
        if len(workspaces_all()) > 1:
            event_dict["workspace"] = workspace_active().key
        else:
            event_dict["workspace"] = settings.BRAZE_RATE_LIMITS.get("workspace")
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_workspace,
    ]


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dictionary: every record, structlog's or the standard library's, is
    rendered by one ProcessorFormatter on the root handler."""
    if log_format not in {"json", "console"}:
        raise ValueError("LOG_FORMAT must be 'json' or 'console'.")
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    # After the traceback is text, so a secret in an exception is masked too.
                    redact_secrets,
                    renderer,
                ],
                # Records of standard-library loggers (Django, Celery, the project's own).
                "foreign_pre_chain": [
                    *_shared_processors(),
                    structlog.stdlib.ExtraAdder(),
                    structlog.stdlib.PositionalArgumentsFormatter(),
                ],
            }
        },
        "filters": {"redact": {"()": RedactSecretsFilter}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "filters": ["redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            # request_started duplicates request_finished; keep the finished line only.
            "django_structlog": {"level": level},
            # Its own access line is replaced by django_structlog's request_finished.
            "django.server": {"level": "WARNING"},
        },
    }


def structlog_configure() -> None:
    """structlog's loggers hand their events to the standard library's handlers (the ones
    LOGGING configures), masked before they leave the logger."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            redact_secrets,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bind_request_actor(request: Any, **_: Any) -> None:
    """Who made the request (username and roles beside django-structlog's user_id) and the
    client address as the rest of the console derives it (console/net.py)."""
    # settings.py imports this module, before the apps (and so the user model) are loaded.
    from console.net import client_ip
    from console.roles import user_roles

    fields: dict[str, Any] = {"ip": client_ip(request)}
    session = getattr(request, "session", None)
    accessed = getattr(session, "accessed", None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        fields["actor"] = user.get_username()
        fields["roles"] = sorted(str(role) for role in user_roles(user))
    if accessed is False:
        # Reading the user for a log line must not make every response vary on the cookie.
        session.accessed = False  # type: ignore[union-attr]
    structlog.contextvars.bind_contextvars(**fields)


def request_line(request: Any) -> str:
    """``METHOD path?query`` with the values of secret URL parts masked: the token of an
    invitation link (``welcome/<uidb64>/<token>/``), ``?token=`` and the like."""
    from urllib.parse import parse_qsl, urlencode

    from django.urls import Resolver404, resolve

    path = request.path
    try:
        match = request.resolver_match or resolve(request.path_info)
    except Resolver404:
        match = None
    if match is not None:
        for name, value in match.kwargs.items():
            if is_secret_key(name) and str(value):
                path = path.replace(str(value), MASK)
    query = request.META.get("QUERY_STRING", "")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_key(k) else v) for k, v in pairs], safe="[]")
    return f"{request.method} {path}" + (f"?{query}" if query else "")


def mask_request_line(request: Any, log_kwargs: dict[str, Any], **_: Any) -> None:
    log_kwargs["request"] = request_line(request)


def connect_request_signals() -> None:
    from django_structlog import signals

    signals.bind_extra_request_metadata.connect(bind_request_actor, weak=False)
    for signal in (
        signals.bind_extra_request_metadata,
        signals.bind_extra_request_finished_metadata,
        signals.bind_extra_request_failed_metadata,
    ):
        signal.connect(mask_request_line, weak=False)
