"""The registry of resource types: all the change-request core knows about each kind of
resource it changes.

Each app registers one `ResourceType` per resource from its `AppConfig.ready()`
(`resource_type_register(...)`): how approved changes reach it (the applier), who proposes,
reviews and sees its requests, which values are personal, how many approvals its actions
need unless a policy says otherwise, where a reviewer sees it rendered, what happens when a
request is closed, and how its identifiers are written. The core (services, selectors,
views) reads nothing else: a new resource is one registration plus its screens.
"""

import re
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from django.contrib.auth.models import AbstractBaseUser

from console.changes.appliers import Applier
from console.changes.models import ChangeRequest
from console.roles import Capability


class UnknownResourceType(LookupError):
    pass


@dataclass(frozen=True)
class IdentifierShape:
    """One way a type's identifiers are written: literal text around named parts, e.g.
    ``"{catalog}/{item}"`` or ``"new:{token}"``. Parts are never empty; each matches as
    little as it can and the last one the rest (``"{catalog}/{item}"`` splits at the first
    slash)."""

    template: str

    @cached_property
    def parts(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.template) if name)

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        pieces = list(string.Formatter().parse(self.template))
        regex = ""
        for i, (literal, name, _, _) in enumerate(pieces):
            regex += re.escape(literal)
            if name:
                regex += f"(?P<{name}>.+)" if i == len(pieces) - 1 else f"(?P<{name}>.+?)"
        return re.compile(regex, re.DOTALL)

    def build(self, **parts: str) -> str:
        return self.template.format(**parts)

    def parse(self, identifier: str) -> dict[str, str] | None:
        match = self._pattern.fullmatch(identifier)
        return match.groupdict() if match else None


class Identifiers:
    """The shapes of a type's identifiers, most specific first: `parse` answers with the
    first that matches (``"{catalog}/bulk-{job}/retry-{round}"`` before
    ``"{catalog}/bulk-{job}"``), `build` uses the one whose parts it is given."""

    def __init__(self, *templates: str) -> None:
        if not templates:
            raise ValueError("a resource type's identifiers need at least one shape")
        self.shapes = tuple(IdentifierShape(t) for t in templates)

    def __repr__(self) -> str:
        return f"Identifiers{tuple(s.template for s in self.shapes)!r}"

    def build(self, **parts: str) -> str:
        for shape in self.shapes:
            if set(shape.parts) == parts.keys():
                return shape.build(**parts)
        raise ValueError(f"no identifier shape has exactly the parts {sorted(parts)}")

    def parse(self, identifier: str) -> dict[str, str]:
        for shape in self.shapes:
            parts = shape.parse(identifier)
            if parts is not None:
                return parts
        raise ValueError(f"{identifier!r} is not an identifier of this resource type")


class ApplyUpdate(Protocol):
    def __call__(
        self, identifier: str, payload: dict[str, Any], *, base: dict[str, Any] | None
    ) -> dict[str, Any]: ...


class ApplyLocal(Protocol):
    def __call__(
        self, *, change_request: ChangeRequest, actor: AbstractBaseUser
    ) -> dict[str, Any]: ...


class OnClose(Protocol):
    def __call__(self, *, change_request_id: int, actor: AbstractBaseUser) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ResourceType:
    key: str  # stored on each change request, e.g. "catalog_item"
    label: str  # shown in screens, e.g. "Catalog item"
    applier: Applier
    identifiers: Identifiers
    # Who proposes and edits, who approves or rejects, and who may list, open and comment
    # on its requests at all. Requests carrying staff personal data or changing who may do
    # what name narrower viewers than whoever reads the content; proposers and reviewers
    # must be among them.
    propose: Capability = Capability.PROPOSE
    review: Capability = Capability.REVIEW
    view: frozenset[Capability] = frozenset({Capability.BROWSE})
    # Kept out of the hash chain's readable data so they can be erased on request.
    personal_fields: frozenset[str] = frozenset()
    # Approvals an action needs when no approval policy row says otherwise (else one).
    default_approvals: Mapping[str, int] = field(default_factory=dict)
    # The name of a URL taking the request's pk where a reviewer sees the change rendered.
    review_url: str | None = None
    # Sentences the change-request page shows above the diff (what Braze will do beyond it).
    review_notes: Callable[[ChangeRequest], list[str]] | None = None
    # Run after the commit that rejects or withdraws a request, for resources holding work
    # that will now never be applied.
    on_close: OnClose | None = None
    # Used for updates instead of `applier.apply`, with the base snapshot Braze was just
    # found to hold, so only the fields that changed are sent.
    apply_update: ApplyUpdate | None = None
    # A local type changes the console's own database, not Braze: `apply_local` runs inside
    # the transaction that records the outcome (it writes its own audit entries, and raises
    # ChangeRequestError to refuse), after `lock(identifier)` if given.
    apply_local: ApplyLocal | None = None
    lock: Callable[[str], None] | None = None
    # The identifier is a console user's id; that person may not review a request about
    # themselves.
    concerns_console_user: bool = False
    # An approver may let its work use the whole of Braze's limit (long background work);
    # other types' approvers are not offered the choice.
    full_rate_limit: bool = False
    # The resource's name as a person knows it (a Content Block's name, not its Braze id),
    # kept in each audit entry about its requests so the log reads, and is searched, by it.
    name_of: Callable[[ChangeRequest], str | None] | None = None
    # Pages of the resources that still exist, by identifier (one query for many): the audit
    # log links its sentences to them.
    urls_of: Callable[[Collection[str]], Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.lock is not None and self.apply_local is None:
            raise ValueError(f"{self.key}: only a local type takes a lock")

    @property
    def local(self) -> bool:
        return self.apply_local is not None


_REGISTRY: dict[str, ResourceType] = {}

# Requests of a type nobody registers (its app removed) are shown only to those who read
# everything: Admins and Auditors.
UNKNOWN_TYPE_VIEWERS = frozenset({Capability.MANAGE_USERS, Capability.AUDIT})


def resource_type_register(resource_type: ResourceType) -> None:
    _REGISTRY[resource_type.key] = resource_type


def resource_type_get(key: str) -> ResourceType:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownResourceType(f"No resource type {key!r} is registered.") from None


def resource_type_find(key: str) -> ResourceType | None:
    """The registered type, or None for requests whose app is gone."""
    return _REGISTRY.get(key)


def resource_types_registered() -> list[ResourceType]:
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]


def resource_type_viewers(key: str) -> frozenset[Capability]:
    found = _REGISTRY.get(key)
    return found.view if found is not None else UNKNOWN_TYPE_VIEWERS
