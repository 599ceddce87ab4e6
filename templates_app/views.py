"""Screens for email templates, Content Blocks and preference centers, their history,
and the sandboxed previews of the HTML Braze holds."""

from __future__ import annotations

import difflib
import json
from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.access import require_capability
from console.braze import BrazeError, BrazeNotFound, describe_error
from console.changes.selectors import change_request_get_visible
from console.http import AuthenticatedRequest, htmx_targets
from console.roles import Capability, user_has_any
from console.tables import Column, table_from_queryset, table_from_rows
from console.tables import list_template as _list_template
from templates_app import appliers, search, selectors, services
from templates_app.diff import snapshot_diff
from templates_app.forms import (
    BrazeUserForm,
    ConnectedContentSamplesForm,
    ContentSearchForm,
    LivePreviewForm,
    PreviewProfileForm,
    UserUrlForm,
)
from templates_app.kinds import KINDS, ContentKind, Loaded
from templates_app.liquid import block_liquid_tag
from templates_app.models import ContentVersion, PreviewProfile, ResourceType
from templates_app.personalize import (
    BlockSource,
    Person,
    Rendered,
    TranslationLocale,
    render_as,
)

# Braze HTML runs with no script, no plugin, no form target and no network at all: a remote
# image, font or stylesheet would tell its host when each reviewer looks (the preview says
# so). Inline styles and data: images still render. "sandbox" also gives it an opaque origin.
PREVIEW_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "font-src data:; frame-ancestors 'self'"
)

# Who may preview as an existing Braze user: the people who write and check content, whose
# work is what a real recipient receives (docs/preview.md, "An existing Braze user").
BRAZE_USER_LOOKUP = (Capability.PROPOSE, Capability.REVIEW)


def _render(
    request: AuthenticatedRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    context["can_propose"] = user_has_any(request.user, [Capability.PROPOSE])
    context["can_lookup_braze_user"] = user_has_any(request.user, BRAZE_USER_LOOKUP)
    return render(request, template, context, status=status)


def _braze_failure(request: AuthenticatedRequest, exc: BrazeError, *, title: str) -> HttpResponse:
    status = 404 if isinstance(exc, BrazeNotFound) else 502
    context = {"title": title, "error": describe_error(exc)}
    return _render(request, "templates_app/braze_error.html", context, status=status)


def _preview(
    request: AuthenticatedRequest, html: str, label: str, *, once: bool = False
) -> dict[str, Any]:
    """A frame for `html`. `once` (HTML holding a Braze user's data): each of the frame's
    two views gets a URL of its own that serves it one time (services.preview_stash)."""
    try:
        token = services.preview_stash(user=request.user, html=html, once=once)
        mobile = services.preview_stash(user=request.user, html=html, once=True) if once else token
    except services.PreviewRefused as exc:
        return {"label": label, "refused": str(exc)}
    return {
        "label": label,
        "url": reverse("templates_app:preview", args=[token]),
        "mobile_url": reverse("templates_app:preview", args=[mobile]),
        "once": once,
    }


def _previews(
    request: AuthenticatedRequest, resource_type: str, values: dict[str, Any]
) -> list[dict[str, str]]:
    return [
        _preview(request, str(values.get(field) or ""), label)
        for field, label in KINDS[resource_type].html_fields
    ]


def _date(value: str) -> datetime | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


# --- previews ------------------------------------------------------------------------------


@require_GET
@require_capability(Capability.BROWSE)
@xframe_options_sameorigin
def preview(request: AuthenticatedRequest, token: str) -> HttpResponse:
    """Stashed Braze HTML, served alone under a CSP that forbids every script."""
    html = services.preview_html(user=request.user, token=token)
    if html is None:
        raise Http404("This preview has expired; reload the page.")
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = PREVIEW_CSP
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
@require_capability(Capability.PROPOSE)
def preview_live(request: AuthenticatedRequest) -> HttpResponse:
    """The editor's live preview: stash what is being typed, answer with the frames."""
    source = request.POST.get("source", "")
    form = LivePreviewForm({"html": request.POST.get(source, "")})
    html = form.cleaned_data["html"] if form.is_valid() else ""
    context = {"frames": [_preview(request, html, "Preview")]}
    return _render(request, "templates_app/_preview.html", context)


# --- previewing as a person (docs/preview.md) ----------------------------------------------

NOBODY = Person("a person with no attributes")


def _chosen_person(request: AuthenticatedRequest, value: str) -> tuple[Person, str]:
    """The person a preview is for, and the chosen profile's id as the page echoes it."""
    try:
        profile = selectors.preview_profile_get(pk=int(value))
    except ValueError:
        profile = None
    if profile is None:
        return NOBODY, ""
    return selectors.preview_profile_person(profile), str(profile.pk)


def _braze_user(
    request: AuthenticatedRequest, *, resource_type: str = "", resource_id: str = ""
) -> Person | str:
    """The Braze user named in the POST to preview as, or the words saying why there is none."""
    form = BrazeUserForm(request.POST)
    if not form.is_valid():
        return "Enter the user's external ID (at most 512 characters)."
    try:
        return services.preview_braze_user_read(
            actor=request.user,
            external_id=form.cleaned_data["external_id"],
            resource_type=resource_type,
            resource_id=resource_id,
        )
    except services.BrazeUserUnknown:
        return "Braze has no user with this external ID in this workspace."
    except BrazeError as exc:
        return f"Braze could not be asked for this user. {describe_error(exc)}"


def _rendered_frame(
    request: AuthenticatedRequest,
    content: str,
    person: Person,
    label: str,
    blocks: BlockSource,
    *,
    once: bool = False,
    translations: list[TranslationLocale] | None = None,
) -> tuple[dict[str, Any], Rendered]:
    """`content` rendered for `person`, stashed for a sandboxed frame like any Braze HTML."""
    rendered = render_as(
        content=content,
        person=person,
        blocks=blocks,
        catalogs=selectors.catalog_source(),
        translations=translations,
        samples=selectors.connected_content_samples(),
    )
    if rendered.message:
        frame: dict[str, Any] = {"label": label, "message": rendered.message}
    else:
        frame = _preview(request, rendered.output, label, once=once)
    frame["warnings"] = rendered.warnings
    frame["calls"] = rendered.calls
    return frame, rendered


def _rendered_text(rendered: Rendered) -> list[str]:
    return (rendered.message or rendered.output).splitlines()


@require_POST
@require_capability(Capability.PROPOSE)
def preview_as(request: AuthenticatedRequest) -> HttpResponse:
    """The edit form's "preview as": what is being typed, rendered for the chosen person."""
    source = request.POST.get("source", "")
    form = LivePreviewForm({"html": request.POST.get(source, "")})
    content = form.cleaned_data["html"] if form.is_valid() else ""
    if "external_id" not in request.POST:
        person, _ = _chosen_person(request, request.POST.get("profile", ""))
        frame, _ = _rendered_frame(
            request, content, person, f"As {person.label}", selectors.content_block_source()
        )
        return _render(request, "templates_app/_preview.html", {"frames": [frame]})
    found = _braze_user(request)
    if isinstance(found, str):
        frames = [{"label": "As a Braze user", "refused": found}]
    else:
        frames = [
            _rendered_frame(
                request,
                content,
                found,
                f"As {found.label}",
                selectors.content_block_source(),
                once=True,
            )[0]
        ]
    return _render(request, "templates_app/_preview.html", {"frames": frames})


@require_GET
@require_capability(Capability.BROWSE)
def preview_as_item(
    request: AuthenticatedRequest, resource_type: str, braze_id: str
) -> HttpResponse:
    """A content page's "preview as": the item as Braze holds it, for the chosen person."""
    read = _item_read(request, resource_type, braze_id)
    if isinstance(read, HttpResponse):
        return read
    kind, snapshot = read
    person, _ = _chosen_person(request, request.GET.get("profile", ""))
    frames = _item_frames(request, kind, braze_id, snapshot, person)
    # The picker is a GET form, so without htmx it opens this as a page of its own.
    template = "templates_app/preview_as.html" + ("#frames" if request.htmx else "")
    context = {
        "frames": frames,
        "kind": kind,
        "braze_id": braze_id,
        "name": snapshot.get(kind.name_field) or braze_id,
        "person": person,
    }
    return _render(request, template, context)


def _item_read(
    request: AuthenticatedRequest, resource_type: str, braze_id: str
) -> tuple[ContentKind, dict[str, Any]] | HttpResponse:
    """The item as Braze holds it, or the page saying in words why it could not be read."""
    kind = KINDS[_resource_type(resource_type)]
    try:
        snapshot, _ = kind.read(braze_id)
    except BrazeError as exc:
        return _braze_failure(request, exc, title=kind.label)
    return kind, snapshot


def _item_frames(
    request: AuthenticatedRequest,
    kind: ContentKind,
    braze_id: str,
    snapshot: dict[str, Any],
    person: Person,
    *,
    once: bool = False,
) -> list[dict[str, Any]]:
    blocks = selectors.content_block_source()
    translations = selectors.content_translations(resource_type=kind.key, braze_id=braze_id)
    return [
        _rendered_frame(
            request,
            str(snapshot.get(field) or ""),
            person,
            f"{label}, as {person.label}",
            blocks,
            once=once,
            translations=translations,
        )[0]
        for field, label in kind.html_fields
    ]


@require_POST
@require_capability(*BRAZE_USER_LOOKUP)
def preview_as_braze_user(
    request: AuthenticatedRequest, resource_type: str, braze_id: str
) -> HttpResponse:
    """A content page's "preview as" for an existing Braze user, read for this response only."""
    read = _item_read(request, resource_type, braze_id)
    if isinstance(read, HttpResponse):
        return read
    kind, snapshot = read
    found = _braze_user(request, resource_type=kind.key, resource_id=braze_id)
    if isinstance(found, str):
        frames = [{"label": "As a Braze user", "refused": found}]
    else:
        frames = _item_frames(request, kind, braze_id, snapshot, found, once=True)
    return _render(request, "templates_app/_preview.html", {"frames": frames})


# --- preview profiles ---------------------------------------------------------------------


def _profile_columns(can_edit: bool) -> list[Column[PreviewProfile]]:
    def link(profile: PreviewProfile) -> str | None:
        return (
            reverse("templates_app:preview_profile_edit", args=[profile.pk]) if can_edit else None
        )

    return [
        Column("name", "Name", link=link),
        Column("language", "Language"),
        Column("time_zone", "Time zone"),
        Column(
            "updated_at",
            "Changed",
            value=lambda p: timezone.localtime(p.updated_at).strftime("%Y-%m-%d %H:%M"),
        ),
    ]


@require_GET
@require_capability(Capability.BROWSE)
def preview_profile_list(request: AuthenticatedRequest) -> HttpResponse:
    table = table_from_queryset(
        request,
        selectors.preview_profile_list(),
        _profile_columns(user_has_any(request.user, [Capability.PROPOSE])),
        default_sort="name",
        empty_message="No preview profiles yet.",
    )
    context = {"table": table}
    return _render(request, _list_template(request, "templates_app/preview_profiles.html"), context)


def _profile_form_screen(
    request: AuthenticatedRequest, profile: PreviewProfile | None
) -> HttpResponse:
    taken = set(selectors.preview_profile_list().values_list("name", flat=True))
    initial = None
    if profile is not None:
        taken.discard(profile.name)
        initial = {
            "name": profile.name,
            "attributes": json.dumps(profile.attributes, indent=2, ensure_ascii=False),
            "language": profile.language,
            "time_zone": profile.time_zone,
        }
    form = PreviewProfileForm(request.POST or None, initial=initial, taken=taken)
    if request.method == "POST" and form.is_valid():
        saved = services.preview_profile_save(
            actor=request.user, profile=profile, data=form.cleaned_data
        )
        messages.success(request, f"Preview profile {saved.name} saved.")
        return redirect("templates_app:preview_profiles")
    return _render(
        request, "templates_app/preview_profile_form.html", {"form": form, "profile": profile}
    )


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def preview_profile_create(request: AuthenticatedRequest) -> HttpResponse:
    return _profile_form_screen(request, None)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def preview_profile_edit(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    profile = selectors.preview_profile_get(pk=pk)
    if profile is None:
        raise Http404("No such preview profile.")
    return _profile_form_screen(request, profile)


@require_POST
@require_capability(Capability.PROPOSE)
def preview_profile_delete(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    profile = selectors.preview_profile_get(pk=pk)
    if profile is None:
        raise Http404("No such preview profile.")
    services.preview_profile_delete(actor=request.user, profile=profile)
    messages.success(request, f"Preview profile {profile.name} deleted.")
    return redirect("templates_app:preview_profiles")


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def preview_settings(request: AuthenticatedRequest) -> HttpResponse:
    """The workspace's Connected Content sample answers, used by every preview."""
    current = selectors.connected_content_samples()
    initial = {"samples": json.dumps(current, indent=2, ensure_ascii=False)}
    form = ConnectedContentSamplesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.connected_content_samples_save(
            actor=request.user, samples=form.cleaned_data["samples"]
        )
        messages.success(request, "Preview settings saved.")
        return redirect("templates_app:preview_settings")
    return _render(request, "templates_app/preview_settings.html", {"form": form})


# --- every kind of content: the list and the proposal form --------------------------------


@require_GET
@require_capability(Capability.BROWSE)
def content_list(request: AuthenticatedRequest, kind: ContentKind) -> HttpResponse:
    searched = {name: request.GET.get(name, "").strip() for name in ("q", "tag", "type")}
    modified_after = request.GET.get("modified_after", "")
    filters = selectors.ContentFilters(**searched, modified_after=_date(modified_after))
    error = ""
    try:
        listing = kind.listing(filters=filters)
    except BrazeError as exc:
        error, listing = describe_error(exc), selectors.Listing([], [])
    table = table_from_rows(
        request,
        listing.rows,
        kind.columns,
        default_sort=kind.name_field,
        empty_message=kind.empty_message,
    )
    context = {
        "kind": kind,
        "table": table,
        "error": error,
        "tags": listing.tags,
        **searched,
        "modified_after": modified_after,
    }
    return _render(request, _list_template(request, "templates_app/content_list.html"), context)


def _form_screen(
    request: AuthenticatedRequest, kind: ContentKind, braze_id: str | None
) -> HttpResponse:
    loaded = Loaded()
    try:
        workspace = selectors.workspace_known()
        if braze_id is not None:
            loaded = kind.load(braze_id)
    except BrazeError as exc:
        return _braze_failure(request, exc, title=kind.label)
    form = kind.form(
        request.POST or None,
        initial=loaded.initial,
        workspace=workspace,
        creating=braze_id is None,
        **loaded.form_options,
    )
    if request.method == "POST" and form.is_valid():
        cr = services.content_propose(
            actor=request.user,
            kind=kind,
            braze_id=braze_id,
            data=form.cleaned_data,
            base_snapshot=loaded.base,
        )
        messages.success(request, "Your change was sent for review.")
        return redirect(cr.get_absolute_url())
    context = {
        "kind": kind,
        "form": form,
        "creating": braze_id is None,
        "braze_id": braze_id,
        "live_fields": [field for field, _ in kind.html_fields],
        "profiles": selectors.preview_profile_list(),
    }
    return _render(request, "templates_app/content_form.html", context)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def content_create(request: AuthenticatedRequest, kind: ContentKind) -> HttpResponse:
    return _form_screen(request, kind, None)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def content_edit(
    request: AuthenticatedRequest, /, kind: ContentKind, **url_id: str
) -> HttpResponse:
    """The URL names the id as the kind does (`kind.id_param`, e.g. content_block_id)."""
    (braze_id,) = url_id.values()
    return _form_screen(request, kind, braze_id)


# --- each kind's own detail screen ----------------------------------------------------------


@require_GET
@require_capability(Capability.BROWSE)
def email_template_detail(request: AuthenticatedRequest, email_template_id: str) -> HttpResponse:
    try:
        template = selectors.email_template_get(email_template_id=email_template_id)
    except BrazeError as exc:
        return _braze_failure(request, exc, title="Email template")
    context = {
        "template": template,
        "frames": _previews(request, ResourceType.EMAIL_TEMPLATE, {"body": template.body}),
        "resource_type": ResourceType.EMAIL_TEMPLATE,
        "braze_id": email_template_id,
        "profiles": selectors.preview_profile_list(),
    }
    return _render(request, "templates_app/email_template_detail.html", context)


@require_GET
@require_capability(Capability.BROWSE)
def content_block_detail(request: AuthenticatedRequest, content_block_id: str) -> HttpResponse:
    try:
        block = selectors.content_block_get(content_block_id=content_block_id, inclusion_data=True)
    except BrazeError as exc:
        return _braze_failure(request, exc, title="Content Block")
    context = {
        "content_block": block,
        "liquid_tag": block_liquid_tag(block.name),
        "state": selectors.content_block_state(content_block_id=content_block_id),
        "references": search.content_block_usage(name=block.name),
        "frames": _previews(request, ResourceType.CONTENT_BLOCK, {"content": block.content}),
        "resource_type": ResourceType.CONTENT_BLOCK,
        "braze_id": content_block_id,
        "profiles": selectors.preview_profile_list(),
    }
    return _render(request, "templates_app/content_block_detail.html", context)


def _preference_center_detail(
    request: AuthenticatedRequest,
    preference_center_id: str,
    *,
    user_url: str = "",
    url_form: UserUrlForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    try:
        center = selectors.preference_center_get(preference_center_id=preference_center_id)
    except BrazeError as exc:
        return _braze_failure(request, exc, title="Preference center")
    snapshot = selectors.preference_center_snapshot(center)
    context = {
        "center": center,
        "options": json.dumps(center.preference_center_options or {}, indent=2),
        "frames": _previews(request, ResourceType.PREFERENCE_CENTER, snapshot),
        "resource_type": ResourceType.PREFERENCE_CENTER,
        "braze_id": preference_center_id,
        "profiles": selectors.preview_profile_list(),
        "url_form": url_form or UserUrlForm(),
        "user_url": user_url,
        "url_error": error,
    }
    return _render(request, "templates_app/preference_center_detail.html", context, status=status)


@require_GET
@require_capability(Capability.BROWSE)
def preference_center_detail(
    request: AuthenticatedRequest, preference_center_id: str
) -> HttpResponse:
    return _preference_center_detail(request, preference_center_id)


@require_POST
@require_capability(Capability.PROPOSE)
def preference_center_user_url(
    request: AuthenticatedRequest, preference_center_id: str
) -> HttpResponse:
    """The link is shown in this one response only: it is never stored or logged."""
    form = UserUrlForm(request.POST)
    if not form.is_valid():
        return _preference_center_detail(request, preference_center_id, url_form=form, status=400)
    try:
        url = services.preference_center_user_url_generate(
            actor=request.user,
            preference_center_id=preference_center_id,
            external_id=form.cleaned_data["external_id"],
        )
    except BrazeError as exc:
        return _preference_center_detail(
            request, preference_center_id, url_form=form, error=describe_error(exc)
        )
    response = _preference_center_detail(request, preference_center_id, url_form=form, user_url=url)
    response["Cache-Control"] = "no-store"
    return response


# --- history --------------------------------------------------------------------------------

VERSION_COLUMNS: list[Column[ContentVersion]] = [
    Column("version", "Version", numeric=True),
    Column("name", "Name"),
    Column("source", "Source", value=lambda v: v.get_source_display()),
    Column(
        "seen_at",
        "Recorded",
        value=lambda v: timezone.localtime(v.seen_at).strftime("%Y-%m-%d %H:%M"),
    ),
    Column(
        "change_request_id",
        "Change request",
        sortable=False,
        value=lambda v: f"#{v.change_request_id}" if v.change_request_id else None,
        link=lambda v: (
            reverse("changes:detail", args=[v.change_request_id]) if v.change_request_id else None
        ),
    ),
]


def _resource_type(value: str) -> ResourceType:
    try:
        return ResourceType(value)
    except ValueError:
        raise Http404("No such kind of content.") from None


@require_GET
@require_capability(Capability.BROWSE)
def history(request: AuthenticatedRequest, resource_type: str, braze_id: str) -> HttpResponse:
    kind = _resource_type(resource_type)
    versions = selectors.version_list(resource_type=kind, braze_id=braze_id)
    latest = versions.order_by("-version").first()
    table = table_from_queryset(
        request,
        versions,
        VERSION_COLUMNS,
        default_sort="-version",
        empty_message="The console has not seen this item yet; the next sync records it.",
    )
    numbers = list(versions.order_by("-version").values_list("version", flat=True))
    context = {
        "table": table,
        "kind": kind,
        "braze_id": braze_id,
        "latest": latest,
        "numbers": numbers,
        "detail_url": reverse(KINDS[kind].detail_url, args=[braze_id]),
    }
    return _render(request, _list_template(request, "templates_app/history.html"), context)


@require_GET
@require_capability(Capability.BROWSE)
def content_search(request: AuthenticatedRequest) -> HttpResponse:
    """One search over every kind of content and its history; with `uses`, where a Content
    Block is included instead."""
    form = ContentSearchForm(request.GET)
    form.is_valid()  # a field that does not validate is left out, as if not given
    data = form.cleaned_data
    q, uses = data.get("q") or "", data.get("uses") or ""
    kind, history = data.get("kind") or "", bool(data.get("history"))
    context: dict[str, Any] = {"form": form, "q": q, "uses": uses, "history": history}
    if uses:
        context["liquid_tag"] = block_liquid_tag(uses)
        context["usages"] = [
            (usage, _found_url(usage.resource_type, usage.braze_id, current=usage.current))
            for usage in search.content_block_usage(
                name=uses, include_history=history, workspace=request.workspace.key
            )
        ]
    else:
        found = search.content_search(
            query=q,
            kinds=[kind] if kind else None,
            include_history=history,
            page=data.get("page") or 1,
            workspace=request.workspace.key,
        )
        context["found"] = found
        context["hits"] = [
            (hit, _found_url(hit.resource_type, hit.braze_id, current=hit.current))
            for hit in found.hits
        ]
    template = "templates_app/search.html"
    if htmx_targets(request, "results"):
        template += "#results"
    return _render(request, template, context)


def _found_url(resource_type: str, braze_id: str, *, current: bool) -> str:
    """A current version opens its item; an earlier one its history."""
    if current:
        return reverse(KINDS[resource_type].detail_url, args=[braze_id])
    return reverse("templates_app:history", args=[resource_type, braze_id])


@require_GET
@require_capability(Capability.BROWSE)
def version_diff(request: AuthenticatedRequest, resource_type: str, braze_id: str) -> HttpResponse:
    """Any two versions side by side, with both renderings of each HTML field."""
    kind = _resource_type(resource_type)
    versions = selectors.version_list(resource_type=kind, braze_id=braze_id)
    try:
        a_number, b_number = int(request.GET.get("a", "")), int(request.GET.get("b", ""))
    except ValueError:
        raise Http404("Choose two versions to compare.") from None
    latest_number = versions.order_by("-version").values_list("version", flat=True).first()
    a = get_object_or_404(versions, version=a_number)
    b = get_object_or_404(versions, version=b_number)
    frames = []
    for field, label in KINDS[kind].html_fields:
        if a.snapshot.get(field) != b.snapshot.get(field):
            before = _preview(request, str(a.snapshot.get(field) or ""), f"{label}, v{a.version}")
            after = _preview(request, str(b.snapshot.get(field) or ""), f"{label}, v{b.version}")
            frames.append((before, after))
    context = {
        "kind": kind,
        "braze_id": braze_id,
        "a": a,
        "b": b,
        "changes": snapshot_diff(a.snapshot, b.snapshot),
        "frame_pairs": frames,
        "restorable": [v for v in (a, b) if v.version != latest_number],
        "numbers": list(versions.order_by("-version").values_list("version", flat=True)),
    }
    return _render(request, "templates_app/version_diff.html", context)


@require_POST
@require_capability(Capability.PROPOSE)
def version_restore(
    request: AuthenticatedRequest, resource_type: str, braze_id: str, version: int
) -> HttpResponse:
    kind = _resource_type(resource_type)
    chosen = get_object_or_404(
        selectors.version_list(resource_type=kind, braze_id=braze_id), version=version
    )
    try:
        cr = services.version_restore(actor=request.user, version=chosen)
    except BrazeError as exc:
        return _braze_failure(request, exc, title="Restore")
    messages.success(request, f"Restoring version {version} was sent for review.")
    return redirect(cr.get_absolute_url())


# --- reviewing a change ---------------------------------------------------------------------


def _person_pairs(
    request: AuthenticatedRequest,
    resource_type: str,
    before: dict[str, Any],
    after: dict[str, Any],
    person: Person,
    *,
    braze_id: str = "",
    once: bool = False,
) -> list[tuple[str, dict[str, Any], dict[str, Any], list[str]]]:
    """Each HTML field rendered for `person` before and after, and the rendered text's diff.

    A changed Content Block renders with its new content wherever it includes itself by
    name; every other block as the content history last saw it.
    """
    overrides = {}
    if resource_type == ResourceType.CONTENT_BLOCK and after.get("name"):
        overrides[str(after["name"])] = str(after.get("content") or "")
    blocks_before = selectors.content_block_source()
    blocks_after = selectors.content_block_source(overrides=overrides)
    # Braze keeps translations by template or block: the current ones serve both sides.
    translations = selectors.content_translations(resource_type=resource_type, braze_id=braze_id)
    pairs = []
    for field, label in KINDS[resource_type].html_fields:
        old, old_rendered = _rendered_frame(
            request,
            str(before.get(field) or ""),
            person,
            f"{label}, before",
            blocks_before,
            once=once,
            translations=translations,
        )
        new, new_rendered = _rendered_frame(
            request,
            str(after.get(field) or ""),
            person,
            f"{label}, after",
            blocks_after,
            once=once,
            translations=translations,
        )
        diff = list(
            difflib.unified_diff(
                _rendered_text(old_rendered),
                _rendered_text(new_rendered),
                "before",
                "after",
                lineterm="",
            )
        )
        pairs.append((label, old, new, diff))
    return pairs


@require_GET
@require_capability(Capability.PROPOSE, Capability.REVIEW, Capability.AUDIT)
def change_preview(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """A change request's HTML as a line diff and rendered before and after."""
    return _change_preview(request, pk)


def _change_preview(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    cr = change_request_get_visible(user=request.user, pk=pk, workspace=request.workspace.key)
    if cr is None or cr.resource_type not in KINDS:
        raise Http404("Not a content change.")
    before = cr.base_snapshot or {}
    after = cr.payload or {}
    pairs = [
        (
            field,
            label,
            _preview(request, str(before.get(field) or ""), f"{label}, before"),
            _preview(request, str(after.get(field) or ""), f"{label}, after"),
        )
        for field, label in KINDS[cr.resource_type].html_fields
    ]
    notes = []
    if cr.resource_type == ResourceType.CONTENT_BLOCK:
        notes = appliers.ContentBlockApplier().review_notes(cr)
    context = {
        "cr": cr,
        "changes": snapshot_diff(cr.base_snapshot, cr.payload),
        "pairs": pairs,
        "review_notes": notes,
        "profiles": selectors.preview_profile_list(),
        "chosen": "",
        "person": None,
        "person_pairs": [],
    }
    if request.method == "POST":
        found = _braze_user(request, resource_type=cr.resource_type, resource_id=cr.identifier)
        if isinstance(found, str):
            context["braze_user_error"] = found
        else:
            context["person"] = found
            context["person_pairs"] = _person_pairs(
                request,
                cr.resource_type,
                before,
                after,
                found,
                braze_id=cr.identifier,
                once=True,
            )
        return _render(request, "templates_app/change_preview.html", context)
    if "profile" in request.GET:
        person, context["chosen"] = _chosen_person(request, request.GET["profile"])
        context["person"] = person
        context["person_pairs"] = _person_pairs(
            request, cr.resource_type, before, after, person, braze_id=cr.identifier
        )
    return _render(request, "templates_app/change_preview.html", context)


@require_POST
@require_capability(*BRAZE_USER_LOOKUP)
def change_preview_braze_user(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """The review page's before and after, for an existing Braze user read for this response."""
    return _change_preview(request, pk)
