from typing import Any

from django import forms

from console.audit.events import ERASABLE_FIELDS
from console.audit.services import reason_names_value


class PersonalErasureForm(forms.Form):
    field = forms.ChoiceField(
        label="Kind of personal data",
        choices=[("", "Choose…"), *ERASABLE_FIELDS.items()],
        error_messages={"required": "Choose the kind of personal data to erase."},
    )
    value = forms.CharField(
        label="Value to erase",
        max_length=320,
        help_text="Exactly as recorded; email addresses match in any case.",
        error_messages={"required": "Enter the value to erase, for example the email address."},
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            "Why it is erased, e.g. the reference of the erasure request. Kept in the audit "
            "trail for good, so leave the value itself out."
        ),
        error_messages={"required": "Give the reason for the erasure; it is recorded."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        value, reason = data.get("value"), data.get("reason")
        if value and reason and reason_names_value(reason=reason, value=value):
            self.add_error(
                "reason",
                "Leave the value out of the reason: the reason is kept in the audit trail, "
                "where it could never be erased.",
            )
        return data
