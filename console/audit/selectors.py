"""Reads of the audit trail: one filter used by the list, the export and the benchmark."""

from datetime import datetime, time
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from console.audit.models import AuditEntry

OUTCOMES = [("", "Any"), ("success", "Success"), ("failure", "Failure"), ("refused", "Refused")]


class AuditFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    actor = forms.CharField(label="Actor", required=False, max_length=150)
    action = forms.CharField(label="Action", required=False, max_length=80)
    resource = forms.CharField(label="Resource", required=False, max_length=500)
    change_request = forms.IntegerField(label="Change request", required=False, min_value=1)
    outcome = forms.ChoiceField(label="Outcome", required=False, choices=OUTCOMES)
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


def _day(value: Any, end: bool) -> datetime:
    return timezone.make_aware(datetime.combine(value, time.max if end else time.min))


def _seq_at(condition: Q, order: str) -> int | None:
    seq: int | None = (
        AuditEntry.objects.filter(condition).order_by(order).values_list("seq", flat=True).first()
    )
    return seq


def audit_entries(*, filters: dict[str, Any]) -> QuerySet[AuditEntry]:
    """Entries matching the filters, newest first. Every filter uses an index."""
    qs = AuditEntry.objects.all()
    if actor := filters.get("actor"):
        qs = qs.filter(actor_name=actor)
    if action := filters.get("action"):
        # "braze.write" is one action (served by the (action, seq) index); a family name
        # without a dot ("change_request") selects all its actions.
        if "." in action.rstrip("."):
            qs = qs.filter(action=action)
        else:
            qs = qs.filter(action__startswith=f"{action.rstrip('.')}.")
    if resource := filters.get("resource"):
        qs = qs.filter(Q(resource_id=resource) | Q(resource_type=resource))
    if (cr := filters.get("change_request")) is not None:
        qs = qs.filter(change_request_id=cr)
    if outcome := filters.get("outcome"):
        qs = qs.filter(outcome=outcome)
    if date_from := filters.get("date_from"):
        start = _day(date_from, end=False)
        qs = qs.filter(occurred_at__gte=start)
        # Entries are timestamped under the chain lock, so time order is seq order: a
        # seq bound lets PostgreSQL walk the primary key instead of sorting a day's rows.
        first = _seq_at(Q(occurred_at__gte=start), "occurred_at")
        qs = qs.filter(seq__gte=first) if first is not None else qs.none()
    if date_to := filters.get("date_to"):
        end = _day(date_to, end=True)
        qs = qs.filter(occurred_at__lte=end)
        last = _seq_at(Q(occurred_at__lte=end), "-occurred_at")
        qs = qs.filter(seq__lte=last) if last is not None else qs.none()
    if q := filters.get("q"):
        qs = qs.filter(
            Q(action__icontains=q)
            | Q(actor_name__icontains=q)
            | Q(resource_id__icontains=q)
            | Q(resource_type__icontains=q)
        )
    return qs.order_by("-seq")
