from __future__ import annotations

from django import forms
from django.conf import settings

from catalog_bulk.models import BulkOperation, JobState
from catalog_bulk.uploads import too_large_message


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
        # The upload handler (uploads.py) has stopped larger bodies already; this also covers
        # a form built from a file that did not come through it.
        if upload.size > settings.BULK_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(too_large_message())
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
