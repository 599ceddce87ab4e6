from django import forms


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


class TotpConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class PasskeyForm(forms.Form):
    """The browser's answer (a PublicKeyCredential as JSON), put here by static/mfa/passkeys.js."""

    credential = forms.CharField(widget=forms.HiddenInput, max_length=20_000)
    name = forms.CharField(label="Name", max_length=64, required=False)
