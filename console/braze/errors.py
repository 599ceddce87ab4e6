"""Typed Braze errors, and the plain-English sentence the UI shows for each.

Every exception keeps Braze's own error ids and messages (catalog endpoints send ids such
as ``catalog-name-already-exists``; template, Content Block and preference-center
endpoints send only a message such as "Content contains malformed liquid", which then
serves as the id). Nothing here ever holds a request, its headers or the API key.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BrazeErrorDetail:
    id: str
    message: str
    parameters: tuple[str, ...] = ()
    parameter_values: tuple[Any, ...] = ()


class BrazeError(Exception):
    """Base class. ``operation`` is the client method's name, e.g. ``catalog_create``."""

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        errors: tuple[BrazeErrorDetail, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.status = status
        self.errors = errors

    @property
    def error_ids(self) -> tuple[str, ...]:
        return tuple(detail.id for detail in self.errors)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(operation={self.operation!r}, status={self.status!r}, "
            f"error_ids={self.error_ids!r}, message={self.message!r})"
        )


class BrazeConfigurationError(BrazeError):
    """The console is not configured to reach Braze (no key, bad endpoint)."""


# Reference: "PUT: Replace Multiple Catalog Items"
# (_docs/_api/endpoints/catalogs/catalog_items/asynchronous/put_update_catalog_items.md),
# Troubleshooting. Storage is counted for the whole company, so once Braze answers one of
# these every write that adds item data is refused until storage is freed or raised.
STORAGE_FULL = "company-size-limit-already-reached"
# The request needs more storage than is left: a smaller one might fit, a repeat never will.
STORAGE_SURGE = "company-size-limit-surge"
STORAGE_LIMIT_IDS = (STORAGE_FULL, STORAGE_SURGE)


class BrazeValidationError(BrazeError):
    """Braze refused the request as invalid (400, 409, 422). Nothing was changed."""

    @property
    def storage_limit(self) -> str | None:
        """Braze's id when it refused the write because catalog storage is full, else None."""
        for error_id in self.error_ids:
            if error_identity(error_id) in STORAGE_LIMIT_IDS:
                return error_identity(error_id)
        return None


class BrazeNotFound(BrazeError):
    pass


class BrazeUnauthorized(BrazeError):
    """The API key (or SCIM token) is missing, wrong or revoked."""


class BrazeForbidden(BrazeError):
    def __init__(self, message: str, *, permission: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # The REST API key permission the operation needs and the key lacks.
        self.permission = permission


class BrazeRateLimited(BrazeError):
    """Braze answered 429, or the console's own limiter would have had to wait too long."""

    def __init__(
        self,
        message: str,
        *,
        group: str,
        retry_at: float,
        from_braze: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.group = group
        self.retry_at = retry_at  # epoch seconds
        self.from_braze = from_braze

    @property
    def retry_after(self) -> float:
        return max(0.0, self.retry_at - time.time())


class BrazeServerError(BrazeError):
    """Braze failed (5xx). For a write that is not safe to repeat, it may have landed."""

    def __init__(self, message: str, *, maybe_applied: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_applied = maybe_applied


class BrazeTimeout(BrazeError):
    """No (complete) answer in time. The request may or may not have been applied."""

    def __init__(self, message: str, *, maybe_applied: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_applied = maybe_applied


class BrazeUnavailable(BrazeError):
    """Braze could not be reached at all (DNS, refused connection). Nothing was sent."""


class BrazeBadResponse(BrazeError):
    """Braze (or something in front of it) answered, but not in a form the console can read:
    a body that is not JSON (a maintenance page), or JSON without the fields Braze documents.
    For a write the request was accepted, so it may have been applied."""

    def __init__(self, message: str, *, maybe_applied: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.maybe_applied = maybe_applied


def error_identity(text: str) -> str:
    """One spelling of a Braze error id or message, for comparing them.

    Case, a final full stop, the dash style ("deleted - content", "deleted—content") and
    the workspace's old name "app group" do not matter: Braze's wording moved over the years
    ("...is invalid for this App Group", now "...is invalid for this workspace"). Ids
    spelled with underscores read like the hyphenated ones.
    """
    value = re.sub(r"\s+", " ", text.strip().lower()).rstrip(".").strip()
    value = re.sub(r"\s*[-\u2010-\u2015]\s*", "-", value)
    value = re.sub(r"\bapp ?group\b", "workspace", value)
    return value.replace("_", "-") if " " not in value else value


# Braze's own ids and messages for "there is no such thing". Reference: catalogs.md, scim.md,
# and the Troubleshooting table of "See Content Block information" (_docs/_api/endpoints/
# templates/content_blocks_templates/get_see_email_content_blocks_information.md). Braze
# answers these with 400 (or 200, per braze-sync), so the id, not the status, tells.
NOT_FOUND_IDS = frozenset(
    error_identity(text)
    for text in (
        "catalog-not-found",
        "item-not-found",
        "User not found",
        "Preference center not found",
        "Content Block ID is invalid for this workspace",
        "Content Block has been deleted - content not available",
        # Not in Braze's docs; the same words as the Content Block's.
        "Email template ID is invalid for this workspace",
    )
)


def is_not_found_id(text: str) -> bool:
    return error_identity(text) in NOT_FOUND_IDS


# Plain-English explanations of Braze's documented error ids and messages (catalogs.md,
# templates.md, preference-center.md, scim.md). Keys are compared case-insensitively and
# with '_' read as '-', because Braze's docs spell some ids both ways.
_KNOWN: dict[str, str] = {
    "catalog-name-already-exists": "A catalog with this name already exists in Braze.",
    "catalog-not-found": "Braze has no catalog with this name.",
    "item-not-found": "This item is not in the catalog.",
    "item-already-exists": "An item with this ID is already in the catalog.",
    "invalid-ids": "Item IDs may contain only letters, numbers, hyphens and underscores.",
    "ids-too-large": "Item IDs may be at most 250 characters long.",
    "ids-not-unique": "The same item ID appears more than once in one request.",
    "ids-not-strings": "Item IDs must be text.",
    "items-missing-ids": "Some items have no ID.",
    "invalid-fields": "Some fields are not defined in this catalog.",
    "fields-do-not-match": "The fields do not match the catalog's fields.",
    "items-too-large": "A value is longer than Braze's limit of 5,000 characters.",
    "invalid-keys-in-value-object": "Field names inside a value may not contain '.' or '$'.",
    "too-deep-nesting-in-value-object": "A value is nested more than 50 levels deep.",
    "unable-to-coerce-value": "A value does not match the field's type.",
    "request-includes-too-many-items": "Too many items in one request.",
    "item-array-invalid": "The items were not sent as a list of objects.",
    "id-in-body": "The item ID must not be repeated inside the item's values.",
    "filtered-set-field-too-long": "A value is too long for a selection that filters on it.",
    "invalid-cursor": "The page link has expired; start again from the first page.",
    "already-reached-catalog-item-limit": "The catalog has reached Braze's item limit.",
    "already-reached-company-item-limit": "Your company has reached Braze's catalog item limit.",
    "reached-company-catalogs-limit": "Your company has reached Braze's limit of catalogs.",
    "too-many-catalog-atoms": "Only one catalog can be created per request.",
    "id-not-first-column": "The first field of a catalog must be 'id', of type string.",
    "arbitrary-error": "Braze had an unexplained problem; try again.",
    STORAGE_FULL: (
        "Your company's catalog storage in Braze is full, so Braze takes no new or larger "
        "items; nothing was changed. Free some (delete items or catalogs no longer needed) "
        "or ask your Braze account manager for more storage, then try again."
    ),
    STORAGE_SURGE: (
        "This change needs more catalog storage than your company has left in Braze; "
        "nothing was changed. Free some (delete items or catalogs no longer needed) or ask "
        "your Braze account manager for more storage, then try again."
    ),
    "content contains malformed liquid": "The Liquid in the content has a syntax error.",
    "content block with this name already exists": "A Content Block with this name exists.",
    "content block name cannot be updated for active content blocks": (
        "A Content Block's name cannot change once it is active."
    ),
    "email must have valid content block names": (
        "The email refers to a Content Block that does not exist."
    ),
    "some tags could not be found": "Some tags do not exist in Braze yet; create them first.",
    "content must be smaller than 50kb": "The content is larger than Braze's 50 KB limit.",
    "template name is required": "The template needs a name.",
    "user already exists in the database.": "A dashboard user with this email already exists.",
    "user not found": "Braze has no dashboard user with this ID.",
    "content block id is invalid for this workspace": (
        "Braze has no Content Block with this ID in this workspace."
    ),
    "content block has been deleted - content not available": (
        "This Content Block was deleted in Braze."
    ),
    "email template id is invalid for this workspace": (
        "Braze has no email template with this ID in this workspace."
    ),
}
_KNOWN_BY_IDENTITY = {error_identity(key): text for key, text in _KNOWN.items()}

_BY_CLASS: dict[type[BrazeError], str] = {
    BrazeConfigurationError: "The console is not set up to reach Braze. Ask an administrator.",
    BrazeValidationError: "Braze refused the change as invalid; nothing was changed.",
    BrazeNotFound: "Braze could not find it; it may have been deleted in the Braze dashboard.",
    BrazeUnauthorized: "Braze did not accept the console's API key. Ask an administrator.",
    BrazeForbidden: "The console's Braze API key is not allowed to do this.",
    BrazeRateLimited: "Braze's request limit is reached for now.",
    BrazeServerError: "Braze had a problem on its side.",
    BrazeTimeout: "Braze did not answer in time.",
    BrazeUnavailable: "Braze cannot be reached right now; nothing was sent.",
    BrazeBadResponse: (
        "Braze sent an answer the console cannot read (for example a maintenance page)."
    ),
}


def describe_error(error: BrazeError) -> str:
    """One or two sentences a marketer understands, ending with Braze's own error id(s)."""
    parts: list[str] = []
    # A full storage is no fault of the request ("refused as invalid" would mislead): the
    # id's own sentence says what happened and what to do.
    storage_full = isinstance(error, BrazeValidationError) and error.storage_limit
    for cls in () if storage_full else type(error).__mro__:
        if cls in _BY_CLASS:
            parts.append(_BY_CLASS[cls])
            break
    for detail in error.errors:
        known = _KNOWN_BY_IDENTITY.get(error_identity(detail.id))
        if known and known not in parts:
            parts.append(known)
        if detail.parameter_values:
            values = ", ".join(str(v) for v in detail.parameter_values[:5])
            more = "…" if len(detail.parameter_values) > 5 else ""
            parts.append(f"Affected: {values}{more}.")
    if isinstance(error, BrazeForbidden) and error.permission:
        parts.append(f"The key lacks the '{error.permission}' permission.")
    if isinstance(error, BrazeRateLimited):
        wait = error.retry_after
        when = "in under a second" if wait < 1 else f"in about {round(wait)} seconds"
        parts.append(f"It can be tried again {when} (limit group '{error.group}').")
    if isinstance(error, BrazeBadResponse):
        parts.append(error.message)
    if isinstance(error, BrazeServerError | BrazeTimeout | BrazeBadResponse):
        if error.maybe_applied:
            parts.append("The change may or may not have been applied: check it before retrying.")
        else:
            parts.append("Try again in a minute.")
    ids = error.error_ids or ((f"HTTP {error.status}",) if error.status else ())
    if ids:
        parts.append("Braze error: " + "; ".join(ids) + ".")
    return " ".join(parts)
