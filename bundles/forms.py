from django import forms
from django.core.files.uploadedfile import UploadedFile

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
