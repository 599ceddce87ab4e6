from __future__ import annotations

from django import forms
from django.conf import settings

from catalogs.bulk.models import BulkOperation, JobState


class BulkUploadForm(forms.Form):
    operation = forms.ChoiceField(
        label="What to do with each row",
        choices=BulkOperation.choices,
        initial=BulkOperation.UPSERT,
        help_text=(
            "Rows whose values the catalog already holds are never sent. Delete reads only the "
            "id column."
        ),
    )
    file = forms.FileField(
        label="Item file (CSV or JSON Lines)",
        help_text=(
            "CSV: a header row of field names with id, as Braze's own catalog CSV (UTF-8, "
            "with or without BOM). JSON Lines: one object per line with an id. Up to 100 MB."
        ),
    )

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > settings.BULK_MAX_UPLOAD_BYTES:
            limit = settings.BULK_MAX_UPLOAD_BYTES // (1024 * 1024)
            raise forms.ValidationError(
                f"The file is larger than {limit} MB; split it and upload the parts."
            )
        return upload


class BulkControlForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("pause", "Pause"),
            ("resume", "Resume"),
            ("cancel", "Cancel"),
            ("retry", "Send failed batches again"),
        ],
    )


class BulkJobFilterForm(forms.Form):
    state = forms.ChoiceField(
        label="State", required=False, choices=[("", "Any state"), *JobState.choices]
    )
