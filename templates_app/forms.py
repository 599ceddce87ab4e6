"""Forms for proposals. Each runs the rules Braze would apply (rules.py) before any
request is made, so what reaches a reviewer is something Braze will accept."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.urls import reverse

from templates_app.models import ResourceType
from templates_app.rules import (
    CONTENT_TOO_LARGE,
    Errors,
    Workspace,
    content_block_errors,
    content_block_state_notice,
    content_too_large,
    email_template_errors,
    preference_center_errors,
)

PROFILE_ATTRIBUTES_MAX_CHARS = 20_000
STATE_CHOICES = [("active", "Active"), ("draft", "Draft")]
CODE = {"class": "code", "rows": 18, "spellcheck": "false", "data-code-editor": ""}


class TagsField(forms.CharField):
    """Comma-separated tags in the form, a list in the payload."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [tag.strip() for tag in text.split(",") if tag.strip()]

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value


def _live_preview(form: forms.Form, *names: str) -> None:
    """As the HTML is typed, htmx posts the form and shows the result in sandboxed frames."""
    for name in names:
        form.fields[name].widget.attrs.update(
            {
                "hx-post": reverse("templates_app:preview_live"),
                "hx-trigger": "load, input changed delay:700ms",
                "hx-target": f"#preview-{name}",
                "hx-vals": json.dumps({"source": name}),
            }
        )


def _apply_rule_errors(form: forms.Form, errors: Errors) -> None:
    for field, messages in errors.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class ContentForm(forms.Form):
    """A proposal form of one kind of content; the shared form screen builds every one alike.

    `creating` is False when an existing item is edited; `notice` is shown above the form.
    """

    notice = ""

    def __init__(
        self, *args: Any, workspace: Workspace, creating: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.creating = creating


class ContentBlockForm(ContentForm):
    name = forms.CharField(
        required=False,
        help_text="Letters, digits, hyphens and underscores; fixed once the block is active.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    content = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs=CODE), label="Content (HTML)"
    )
    state = forms.ChoiceField(
        choices=STATE_CHOICES,
        initial="active",
        help_text="An active block cannot go back to draft.",
    )
    tags = TagsField(required=False, help_text="Comma-separated; each tag must exist in Braze.")

    def __init__(
        self,
        *args: Any,
        current_name: str | None = None,
        current_state: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.current_name = current_name
        self.current_state = current_state
        if not self.creating and current_state is None:
            # Braze's update makes a block active unless told otherwise, and its info endpoint
            # does not say whether a block is a draft: unless the console saved this block
            # itself, the edit can only publish it, and the form says so.
            state = self.fields["state"]
            state.disabled = True
            state.initial = "active"
            state.help_text = "Braze makes the block active when this change is applied."
            self.notice = (
                content_block_state_notice(state="active", known_state=None)
                + " Its name is fixed, as for any active block."
            )
        _live_preview(self, "content")

    def clean_content(self) -> str:
        # Before anything parses it: an oversized body is refused in one pass.
        content: str = self.cleaned_data.get("content") or ""
        if content_too_large(content):
            raise forms.ValidationError(CONTENT_TOO_LARGE)
        return content

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            errors = content_block_errors(
                data,
                workspace=self.workspace,
                current_name=self.current_name,
                current_state=self.current_state,
            )
            _apply_rule_errors(self, errors)
        return data


class EmailTemplateForm(ContentForm):
    # A field may share the name of Form.template_name: the metaclass takes fields off the class.
    template_name = forms.CharField(required=False, label="Name")  # type: ignore[assignment]
    subject = forms.CharField(required=False)
    preheader = forms.CharField(required=False)
    body = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs=CODE), label="HTML body"
    )
    plaintext_body = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Plaintext body",
    )
    should_inline_css = forms.ChoiceField(
        choices=[("", "Workspace default"), ("true", "Yes"), ("false", "No")],
        required=False,
        label="Inline CSS",
    )
    tags = TagsField(required=False, help_text="Comma-separated; each tag must exist in Braze.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _live_preview(self, "body")

    def clean_should_inline_css(self) -> bool | None:
        value = self.cleaned_data.get("should_inline_css")
        return {"true": True, "false": False}.get(value or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            _apply_rule_errors(self, email_template_errors(data, workspace=self.workspace))
        return data


class PreferenceCenterForm(ContentForm):
    name = forms.CharField(
        required=False, help_text="Letters, digits, hyphens and underscores; fixed once created."
    )
    preference_center_title = forms.CharField(required=False, label="Title")
    preference_center_page_html = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs=CODE),
        label="Preference center page HTML",
    )
    confirmation_page_html = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs=CODE),
        label="Confirmation page HTML",
    )
    state = forms.ChoiceField(choices=STATE_CHOICES, initial="active")
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "code"}),
        label="Options (JSON)",
        help_text='e.g. {"meta-viewport-content": "width=device-width"}',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.creating:
            self.fields["name"].disabled = True
            self.fields["options"].help_text = (
                "Sent to Braze only if you change them, and then they replace every option "
                "Braze holds. Braze's view may leave out favicon links (links-tags) set in "
                "its dashboard: if you change the options, include any you want to keep."
            )
        _live_preview(self, "preference_center_page_html", "confirmation_page_html")

    def clean_options(self) -> Any:
        text = (self.cleaned_data.get("options") or "").strip()
        if not text:
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"This is not valid JSON ({exc.msg}).") from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            _apply_rule_errors(
                self,
                preference_center_errors(data, workspace=self.workspace, creating=self.creating),
            )
        return data


class UserUrlForm(forms.Form):
    external_id = forms.CharField(max_length=512, label="User's external ID")


class BrazeUserForm(forms.Form):
    """An existing Braze user to preview as, by external id (used for one preview only)."""

    external_id = forms.CharField(max_length=512, label="Braze user's external ID")


class LivePreviewForm(forms.Form):
    html = forms.CharField(required=False, strip=False)


class PreviewProfileForm(forms.Form):
    """A made-up person to preview as; attributes shaped like Braze's user export."""

    name = forms.CharField(max_length=100)
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**CODE, "rows": 12}),
        help_text=(
            'As Braze\'s user export gives a user: {"first_name": "Ana", "email": "…", '
            '"custom_attributes": {"plan": "gold"}}. docs/preview.md lists every field.'
        ),
    )
    language = forms.CharField(max_length=10, required=False, help_text="e.g. en, pt, ja")
    time_zone = forms.CharField(
        max_length=64, required=False, help_text="An IANA name, e.g. Europe/London"
    )

    def __init__(self, *args: Any, taken: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken = taken or set()

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if name in self.taken:
            raise forms.ValidationError("Another profile has this name.")
        return name

    def clean_attributes(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("attributes") or "").strip() or "{}"
        if len(text) > PROFILE_ATTRIBUTES_MAX_CHARS:
            raise forms.ValidationError(
                f"Keep attributes under {PROFILE_ATTRIBUTES_MAX_CHARS:,} characters."
            )
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Attributes are one JSON object: {...}.")
        return value

    def clean_language(self) -> str:
        language: str = self.cleaned_data["language"].strip()
        return language

    def clean_time_zone(self) -> str:
        zone: str = self.cleaned_data["time_zone"].strip()
        if zone and zone not in available_timezones():
            raise forms.ValidationError(f"{zone} is not a time zone name (e.g. Europe/London).")
        return zone


SAMPLES_MAX = 100
SAMPLE_MAX_CHARS = 50_000


class ConnectedContentSamplesForm(forms.Form):
    samples = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**CODE, "rows": 14}),
        help_text=(
            'One JSON object: a URL pattern ("*" matches anything) and the answer a preview '
            'uses, e.g. {"https://api.example.com/users/*": {"tier": "gold"}}.'
        ),
    )

    def clean_samples(self) -> dict[str, str]:
        text = (self.cleaned_data.get("samples") or "").strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"This is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Samples are one JSON object: {pattern: answer, ...}.")
        if len(value) > SAMPLES_MAX:
            raise forms.ValidationError(f"Keep at most {SAMPLES_MAX} patterns.")
        samples = {
            str(pattern).strip(): answer if isinstance(answer, str) else json.dumps(answer)
            for pattern, answer in value.items()
        }
        if any(not pattern for pattern in samples):
            raise forms.ValidationError("A pattern is empty.")
        if any(len(answer) > SAMPLE_MAX_CHARS for answer in samples.values()):
            raise forms.ValidationError(f"Keep each answer under {SAMPLE_MAX_CHARS:,} characters.")
        return samples


class ContentSearchForm(forms.Form):
    """The search page's parameters; one that does not validate searches for nothing."""

    q = forms.CharField(required=False, max_length=200, label="Search content")
    kind = forms.ChoiceField(
        required=False,
        label="Kind",
        choices=[("", "All kinds"), *ResourceType.choices],
        widget=forms.Select(attrs={"id": "search-kind"}),
    )
    history = forms.BooleanField(required=False, label="Include earlier versions")
    # A Content Block's name: list what includes it instead of searching text.
    uses = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)
