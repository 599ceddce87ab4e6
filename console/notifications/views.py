from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from console.access import require_capability
from console.changes.selectors import CHANGE_REQUEST_READERS
from console.http import AuthenticatedRequest
from console.notifications.models import NotificationKind
from console.notifications.selectors import notification_kinds_enabled, webhook_deliveries_recent
from console.notifications.services import notification_preferences_set
from console.roles import Capability


class PreferencesForm(forms.Form):
    kinds = forms.MultipleChoiceField(
        label="Email me when",
        choices=NotificationKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


@require_http_methods(["GET", "POST"])
@require_capability(*CHANGE_REQUEST_READERS)
def notification_preferences(request: AuthenticatedRequest) -> HttpResponse:
    """Each person chooses which emails about change requests they get."""
    enabled = notification_kinds_enabled(user=request.user)
    form = PreferencesForm(
        request.POST or None, initial={"kinds": sorted(k.value for k in enabled)}
    )
    if request.method == "POST" and form.is_valid():
        chosen = {NotificationKind(k) for k in form.cleaned_data["kinds"]}
        notification_preferences_set(actor=request.user, enabled=chosen)
        messages.success(request, "Your notification choices are saved.")
        return redirect(reverse("notifications:preferences"))
    return render(request, "console/notifications/preferences.html", {"form": form})


@require_GET
@require_capability(Capability.MANAGE_USERS)
def webhook_deliveries(request: AuthenticatedRequest) -> HttpResponse:
    """The workspace webhook's delivery log, for Admins (its URL stays in the settings)."""
    return render(
        request,
        "console/notifications/deliveries.html",
        {
            "deliveries": webhook_deliveries_recent(),
            "configured": bool(settings.NOTIFY_WEBHOOK_URL),
        },
    )
