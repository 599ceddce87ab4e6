from typing import Any, cast

from django import forms
from django.core.files.uploadedfile import UploadedFile

from bundles.content import APPLY_ORDER
from console.workspaces import workspaces_all

# The zip as uploaded; what it unpacks to is limited again member by member.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _workspace_choices() -> list[tuple[str, str]]:
    return [(w.key, w.label) for w in workspaces_all()]


class ImportForm(forms.Form):
    workspace = forms.ChoiceField(choices=_workspace_choices)
    tree = forms.FileField(
        label="Zip of the content files",
        help_text="As the export writes it: content_blocks/, email_templates/, "
        "preference_centers/ and catalogs/.",
    )

    def clean_tree(self) -> "UploadedFile[bytes]":
        upload: UploadedFile[bytes] = self.cleaned_data["tree"]
        if (upload.size or 0) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The zip is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
            )
        if not (upload.name or "").lower().endswith(".zip"):
            raise forms.ValidationError("Upload a .zip file.")
        return upload


class PromotionForm(forms.Form):
    """What to promote and where: the objects as "kind:name", and of the blocks the last
    preview offered (`offered`), those still ticked (`dependency`) come along."""

    target = forms.ChoiceField(label="Target workspace")
    pick = forms.MultipleChoiceField(required=False)
    dependency = forms.MultipleChoiceField(required=False)
    offered = forms.MultipleChoiceField(required=False)
    digest = forms.CharField(required=False, max_length=64)

    def __init__(self, data: Any = None, *, targets: list[tuple[str, str]]) -> None:
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["target"]).choices = targets
        # Whether the source holds a pick is the preview's to say ("not in the source"):
        # here only its form is checked, and a block name is any text.
        for name in ("pick", "dependency", "offered"):
            given = data.getlist(name) if data is not None else []
            cast(forms.ChoiceField, self.fields[name]).choices = [(v, v) for v in given]

    def clean_pick(self) -> list[str]:
        picks: list[str] = self.cleaned_data["pick"]
        if not picks:
            raise forms.ValidationError("Pick at least one object to promote.")
        unknown = [p for p in picks if p.partition(":")[0] not in APPLY_ORDER or ":" not in p]
        if unknown:
            raise forms.ValidationError(f"Not an object a promotion can pick: {unknown[0]}.")
        return picks
