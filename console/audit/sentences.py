"""The audit trail in words: one sentence template per action, filled from the entry.

"Eddie Editor proposed an edit to Content Block welcome_header (change #12)". People are
named by their display name; resources by the name the entry kept when it was written
(`resource_name`, or `name` for older writers), else by their identifier; links go to the
change request and to resources that still exist. The raw action and data stay on the
entry's page and in exports: a sentence is a reading aid, never the record.

Placeholders: {actor}, {n} (the change request, "#12"), {title} (its title when the entry
kept one, else the resource), {resource} ("Content Block welcome_header"), {proposal} ("an
edit to Content Block welcome_header"), {promotion} ("2 objects from Staging to Production:
…", from a promotion's entry), {workspace} ("workspace Production (production)": the entry's
workspace, production said).
"""

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString

from console.audit import events
from console.audit.models import AuditEntry
from console.changes.models import ChangeAction, ChangeRequest
from console.changes.resource_types import resource_type_find
from console.workspaces import workspace_get

SENTENCES: Mapping[str, str] = {
    # Sign-in and sessions
    events.AUTH_SIGN_IN: "{actor} signed in",
    events.AUTH_SIGN_OUT: "{actor} signed out",
    # The typed username is personal data (erasable): the sentence never repeats it.
    events.AUTH_SIGN_IN_FAILED: "A sign-in failed",
    events.AUTH_SIGN_IN_FAILURES: "Sign-ins failed again and again from one source",
    events.AUTH_SESSION_ENDED: "{actor}'s session ended",
    events.AUTH_BREAK_GLASS_SIGN_IN: (
        "{actor} signed in with a local password while single sign-on is on"
    ),
    # Second factor
    events.MFA_DEVICE_ADDED: "{actor} added an authenticator app",
    events.MFA_DEVICE_REMOVED: "{actor} removed an authenticator app",
    events.MFA_DEVICES_RESET: "{actor} reset the second factor of {resource}",
    events.MFA_RECOVERY_CODES_ISSUED: "{actor} was given new recovery codes",
    events.MFA_RECOVERY_CODE_USED: "{actor} used a recovery code",
    events.MFA_FAILED: "{actor} entered a wrong second-factor code",
    # Single sign-on
    events.SSO_USER_CREATED: "{actor} created {resource} at their first sign-in",
    events.SSO_ROLES_CHANGED: "{actor} changed the roles of {resource}",
    # The trail itself
    events.AUDIT_CHAIN_KEYED: "The audit trail began to be hashed with its chain key",
    events.AUDIT_EXPORTED: "{actor} exported the audit log",
    events.AUDIT_PERSONAL_ERASED: "{actor} erased a person's data from the audit log",
    events.AUDIT_PERSONAL_LOOKED_UP: "{actor} looked up where a person's data is kept",
    events.AUDIT_VERIFY_REQUESTED: "{actor} asked for the audit trail to be verified",
    events.AUDIT_VERIFIED: "The verification {actor} asked for finished",
    # Change requests
    events.CHANGE_REQUEST_PROPOSED: "{actor} proposed {proposal} (change {n})",
    events.CHANGE_REQUEST_SUBMITTED: "{actor} sent change {n} for review: {title}",
    events.CHANGE_REQUEST_EDITED: "{actor} edited change {n}: {title}",
    events.CHANGE_REQUEST_COMMENTED: "{actor} commented on change {n}: {title}",
    events.CHANGE_REQUEST_APPROVED: "{actor} approved change {n}: {title}",
    events.CHANGE_REQUEST_APPROVE_REFUSED: "{actor} was not allowed to approve change {n}: {title}",
    events.CHANGE_REQUEST_REJECTED: "{actor} rejected change {n}: {title}",
    events.CHANGE_REQUEST_REJECT_REFUSED: "{actor} was not allowed to reject change {n}: {title}",
    events.CHANGE_REQUEST_CANCELLED: "{actor} withdrew change {n}: {title}",
    events.CHANGE_REQUEST_RETRY_REQUESTED: "{actor} asked to apply change {n} again: {title}",
    events.CHANGE_REQUEST_SCHEDULED: "{actor} set when change {n} is applied: {title}",
    events.CHANGE_REQUEST_UNSCHEDULED: "{actor} removed the apply time of change {n}: {title}",
    events.CHANGE_REQUEST_APPLYING: "Change {n} began to be applied for {actor}: {title}",
    events.CHANGE_REQUEST_APPLY_REFUSED: "Change {n} was not applied for {actor}: {title}",
    events.CHANGE_REQUEST_APPLIED: "Change {n} was applied for {actor}: {title}",
    events.BUNDLE_PART_APPLIED: "{resource} was applied as part of change {n} for {actor}",
    events.BUNDLE_PART_FAILED: "{resource} failed as part of change {n} for {actor}",
    events.BUNDLE_PROMOTED: "{actor} promoted {promotion} (change {n})",
    events.BUNDLE_PART_WAITING: (
        "{resource} waits in change {n} for a part it depends on, for {actor}"
    ),
    events.CHANGE_REQUEST_CONFLICT: (
        "Change {n} was not applied: {resource} had changed in Braze since it was proposed"
    ),
    events.CHANGE_REQUEST_FAILED: "Change {n} failed to apply: {title}",
    events.BRAZE_WRITE: "The console wrote {resource} to Braze for change {n}",
    events.POLICY_CHANGED: "{actor} changed the approval policy for {resource}",
    events.NOTIFICATIONS_PREFERENCES_CHANGED: "{actor} changed which notifications they get",
    # Catalogs
    events.CATALOG_LIST_REFRESH_REQUESTED: "{actor} asked for the list of catalogs to be refreshed",
    events.CATALOG_SYNC_REQUESTED: "{actor} asked for {resource} to be synced from Braze",
    events.CATALOG_SYNCED: "{actor} synced {resource} from Braze",
    events.CATALOG_ITEM_EXTERNAL_ADDED: "{resource} was added in Braze, outside the console",
    events.CATALOG_ITEM_EXTERNAL_CHANGED: "{resource} was changed in Braze, outside the console",
    events.CATALOG_ITEM_EXTERNAL_REMOVED: "{resource} was removed in Braze, outside the console",
    # Bulk catalog jobs
    events.CATALOG_BULK_UPLOADED: "{actor} uploaded {resource}",
    events.CATALOG_BULK_APPROVED_START: "{actor} approved, and so started, {resource}",
    events.CATALOG_BULK_STARTED: "{resource} started sending to Braze",
    events.CATALOG_BULK_PAUSED: "{actor} paused {resource}",
    events.CATALOG_BULK_RESUMED: "{actor} resumed {resource}",
    events.CATALOG_BULK_FINISHED: "{resource} finished",
    events.CATALOG_BULK_CANCELLED: "{actor} cancelled {resource}",
    events.CATALOG_BULK_READ_BACK: "{actor} read {resource} back from Braze",
    events.CATALOG_BULK_RETRY_FAILED: "{actor} sent the failed batches of {resource} again",
    events.CATALOG_BULK_RETRY_APPROVAL_REQUESTED: (
        "{actor} asked for approval to send the failed batches of {resource} again"
    ),
    events.CATALOG_BULK_RETRY_NOT_APPROVED: (
        "Sending the failed batches of {resource} again was not approved"
    ),
    # Content
    events.CONTENT_EXTERNAL_CHANGE: "{resource} was changed in Braze, outside the console",
    events.PREVIEW_PROFILE_CREATE: "{actor} created {resource}",
    events.PREVIEW_PROFILE_UPDATE: "{actor} edited {resource}",
    events.PREVIEW_PROFILE_DELETE: "{actor} deleted {resource}",
    events.PREVIEW_SETTINGS_UPDATE: "{actor} changed the Connected Content samples of previews",
    events.PREFERENCE_CENTER_USER_URL: "{actor} made a link to {resource} for one Braze user",
    events.PREVIEW_BRAZE_USER_LOOKUP: "{actor} previewed {resource} as one Braze user",
    # Console users and access reviews
    events.USER_INVITED: "{actor} invited {resource}",
    events.USER_INVITATION_RESENT: "{actor} sent {resource} a new invitation",
    events.USER_ROLES_CHANGED: "{actor} changed the roles of {resource}",
    events.USER_WORKSPACE_ROLES_CHANGED: "{actor} changed the roles of {resource} in {workspace}",
    events.USER_DEACTIVATED: "{actor} deactivated {resource}",
    events.USER_REACTIVATED: "{actor} reactivated {resource}",
    events.ACCESS_REVIEW_EXPORTED: "{actor} exported the access review",
}

# Writers that are not people, by the name they append under.
SYSTEM_ACTORS: Mapping[str, str] = {
    "system": "the console",
    "anonymous": "someone not signed in",
    "braze-sync": "the content sync",
    "catalog-sync": "the catalog sync",
    "catalog-bulk": "the bulk pipeline",
    "identity provider": "the identity provider",
}

# Names for resource types no change-request type registers (or reads better than its label).
RESOURCE_LABELS: Mapping[str, str] = {
    "catalog_bulk": "bulk job",
    "console_user": "console user",
    "user": "console user",
    "preview_profile": "preview profile",
    "preview_settings": "preview settings",
    "audit": "audit trail",
}

# Resources about people: named by number only (their names are personal data, which the
# chained part of an entry never holds, and which a sentence must not bring back).
PEOPLE = frozenset(
    {"console_user", "user", "dashboard_user", "console_role", "workspace_role", "mfa_reset"}
)

_PROPOSALS: Mapping[str, str] = {
    ChangeAction.CREATE: "creating",
    ChangeAction.UPDATE: "an edit to",
    ChangeAction.DELETE: "deleting",
    ChangeAction.BULK: "bulk changes to",
}


@dataclass(frozen=True, slots=True)
class Sentence:
    html: SafeString
    text: str


@dataclass(frozen=True, slots=True)
class _Known:
    """What the page's entries refer to, read once for all of them."""

    people: Mapping[int, str]  # display names by user id
    requests: Mapping[int, tuple[str, str, str]]  # pk: (resource type, action, title)
    urls: Mapping[tuple[str, str], str]  # (resource type, identifier): page

    @classmethod
    def of(cls, entries: Sequence[AuditEntry]) -> "_Known":
        actor_ids = {e.actor_id for e in entries if e.actor_id is not None}
        people = {
            user.pk: user.get_full_name().strip() or user.get_username()
            for user in get_user_model()
            .objects.filter(pk__in=actor_ids)
            .only("pk", "username", "first_name", "last_name")
        }
        request_ids = {e.change_request_id for e in entries if e.change_request_id is not None}
        requests = {
            pk: (resource_type, action, title)
            for pk, resource_type, action, title in ChangeRequest.objects.filter(
                pk__in=request_ids
            ).values_list("pk", "resource_type", "action", "title")
        }
        wanted: dict[str, set[str]] = {}
        for entry in entries:
            if entry.resource_type and entry.resource_id:
                wanted.setdefault(entry.resource_type, set()).add(entry.resource_id)
        urls: dict[tuple[str, str], str] = {}
        for resource_type, identifiers in wanted.items():
            kind = resource_type_find(resource_type)
            if kind is not None and kind.urls_of is not None:
                for identifier, url in kind.urls_of(identifiers).items():
                    urls[resource_type, identifier] = url
        return cls(people=people, requests=requests, urls=urls)


def _data(entry: AuditEntry) -> dict[str, Any]:
    return entry.data if isinstance(entry.data, dict) else {}


def _actor(entry: AuditEntry, known: _Known) -> str:
    if entry.actor_id is not None:
        return known.people.get(entry.actor_id, entry.actor_name)
    return SYSTEM_ACTORS.get(entry.actor_name, entry.actor_name)


def _label(resource_type: str) -> str:
    if resource_type in RESOURCE_LABELS:
        return RESOURCE_LABELS[resource_type]
    kind = resource_type_find(resource_type)
    return (kind.label if kind is not None else resource_type.replace("_", " ")).lower()


def _resource_name(entry: AuditEntry) -> str:
    """The name kept at the time of the event; the identifier for entries that kept none."""
    if entry.resource_type in PEOPLE:
        return f"#{entry.resource_id}" if entry.resource_id else ""
    data = _data(entry)
    for key in ("resource_name", "name"):
        if isinstance(data.get(key), str) and data[key]:
            return str(data[key])
    return entry.resource_id


def _resource(entry: AuditEntry, known: _Known) -> tuple[str, SafeString]:
    label, name = _label(entry.resource_type), _resource_name(entry)
    if not entry.resource_type:
        return "something", conditional_escape("something")
    if not name:
        return f"the {label}", conditional_escape(f"the {label}")
    url = known.urls.get((entry.resource_type, entry.resource_id))
    text = f"{label} {name}"
    if url is None:
        return text, conditional_escape(text)
    return text, format_html('{} <a href="{}">{}</a>', label, url, name)


def _title(entry: AuditEntry, known: _Known) -> str | None:
    """The request's title as the entry kept it, else as the request has it now; never for
    requests about people (their titles name someone)."""
    if entry.resource_type in PEOPLE:
        return None
    data = _data(entry)
    if isinstance(data.get("title"), str) and data["title"]:
        return str(data["title"])
    found = known.requests.get(entry.change_request_id or 0)
    if found is not None and found[0] not in PEOPLE:
        kind = resource_type_find(found[0])
        if kind is None or not (kind.personal_fields or kind.concerns_console_user):
            return found[2]
    return None


def _parts(entry: AuditEntry, known: _Known) -> dict[str, tuple[str, SafeString]]:
    actor = _actor(entry, known)
    resource_text, resource_html = _resource(entry, known)
    parts = {
        "actor": (actor, conditional_escape(actor)),
        "resource": (resource_text, resource_html),
    }
    n = entry.change_request_id
    if n is None:
        parts["n"] = ("", conditional_escape(""))
    elif n in known.requests:
        url = reverse("changes:detail", args=[n])
        parts["n"] = (f"#{n}", format_html('<a href="{}">#{}</a>', url, n))
    else:
        parts["n"] = (f"#{n}", conditional_escape(f"#{n}"))
    title = _title(entry, known)
    parts["title"] = (title, conditional_escape(title)) if title else (resource_text, resource_html)
    action = known.requests[n][1] if n is not None and n in known.requests else ""
    verb = _PROPOSALS.get(action, "a change to")
    parts["proposal"] = (f"{verb} {resource_text}", format_html("{} {}", verb, resource_html))
    promotion = _promotion(entry)
    parts["promotion"] = (promotion, conditional_escape(promotion))
    workspace = _workspace(entry)
    parts["workspace"] = (workspace, conditional_escape(workspace))
    return parts


def _promotion(entry: AuditEntry) -> str:
    """ "2 objects from Staging to Production (…, …)", from what a promotion's entry kept."""
    data = _data(entry)
    objects = [str(p) for p in data.get("objects", []) if isinstance(p, str)]
    source, target = data.get("source_label", "?"), data.get("target_label", "?")
    what = f"{len(objects)} object{'s' if len(objects) != 1 else ''}"
    listed = f": {', '.join(objects)}" if objects else ""
    return f"{what} from {source} to {target}{listed}"


def _workspace(entry: AuditEntry) -> str:
    """The entry's workspace by its label (its key too when that differs), production said."""
    if not entry.workspace:
        return "every workspace"
    try:
        found = workspace_get(entry.workspace)
    except LookupError:  # no longer configured: its key is all the entry knows
        return f"workspace {entry.workspace}"
    same = found.label.lower().replace(" ", "-") == found.key
    name = found.label if same else f"{found.label} ({found.key})"
    return f"workspace {name}" + (" (production)" if found.production else "")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentence(entry: AuditEntry, known: _Known) -> Sentence:
    # An action without a template (a test keeps there being none) still reads as a sentence.
    unknown = "{actor} recorded " + entry.action.replace("{", "{{").replace("}", "}}")
    template = SENTENCES.get(entry.action, unknown)
    parts = _parts(entry, known)
    texts: list[str] = []
    htmls: list[SafeString] = []
    fields: list[str | None] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        texts.append(literal)
        htmls.append(conditional_escape(literal))
        fields.append(None)
        if field is not None:
            text, html = parts[field]
            texts.append(text)
            htmls.append(html)
            fields.append(field)
    # A sentence begins with a capital even when it begins with a label ("the console",
    # "content block …"), but a person's name is shown as they spell it.
    first = next((i for i, t in enumerate(texts) if t), None)
    person = first is not None and fields[first] == "actor" and entry.actor_id is not None
    if first is not None and not person and texts[first][:1].islower():
        texts[first] = _capitalised(texts[first])
        if htmls[first][:1].islower():
            # Upper-casing a letter cannot make markup: the piece stays as safe as it was.
            htmls[first] = SafeString(_capitalised(htmls[first]))
    return Sentence(html=format_html_join("", "{}", ((h,) for h in htmls)), text="".join(texts))


def audit_sentences(entries: Iterable[AuditEntry]) -> dict[int, Sentence]:
    """Each entry's sentence, by seq; a bounded number of queries for any number of entries
    (the actors, the change requests, and one per resource type that links its pages)."""
    listed = list(entries)
    known = _Known.of(listed)
    return {entry.seq: _sentence(entry, known) for entry in listed}


def audit_sentence(entry: AuditEntry) -> Sentence:
    return audit_sentences([entry])[entry.seq]
