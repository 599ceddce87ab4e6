"""Forms of the Users section. Dashboard-user forms apply Braze's SCIM rules before sending."""

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator

from console.roles import ROLE_DESCRIPTIONS, Role
from users_admin import scim_rules

ROLE_CHOICES = [(role.value, f"{role.value} — {ROLE_DESCRIPTIONS[role]}") for role in Role]


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ROLE_CHOICES, required=False, **kwargs)


def roles_from(values: list[str]) -> set[Role]:
    return {Role(value) for value in values}


class UserCreateForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only; used to sign in.",
    )
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.EmailField(help_text="The one-time link to choose a password is sent here.")
    roles = RolesField()

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A console user with this username already exists.")
        return username


class UserRolesForm(forms.Form):
    roles = RolesField()


SAME_AS_CONSOLE_WIDE = "console"
OWN_ROLES = "workspace"


class WorkspaceRolesForm(forms.Form):
    """A person's roles in one workspace: their console-wide roles, or roles of its own."""

    scope = forms.ChoiceField(
        label="Roles in this workspace",
        choices=[
            (SAME_AS_CONSOLE_WIDE, "Same as the console-wide roles"),
            (OWN_ROLES, "Only the roles chosen below, in this workspace"),
        ],
        widget=forms.RadioSelect,
    )
    roles = RolesField(
        label="Roles of this workspace",
        help_text="Used only with the second choice above; they replace the console-wide "
        "roles in this workspace.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == OWN_ROLES and not data.get("roles"):
            self.add_error(
                "roles",
                "Choose at least one role, or choose “Same as the console-wide roles”. "
                "To let someone only look at this workspace, give them Viewer.",
            )
        return data

    def chosen_roles(self) -> set[Role] | None:
        """The chosen roles; None: the same as console-wide. Only after is_valid()."""
        if self.cleaned_data["scope"] == SAME_AS_CONSOLE_WIDE:
            return None
        return roles_from(self.cleaned_data["roles"])


class ConsoleUserFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, help_text="Username, name or email")
    role = forms.ChoiceField(
        label="Role",
        required=False,
        choices=[("", "Any role"), *((r.value, r.value) for r in Role)],
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), ("active", "Active"), ("inactive", "Deactivated")],
    )


# --- dashboard users ---------------------------------------------------------------------


class DashboardUserSearchForm(forms.Form):
    email = forms.CharField(
        label="Email", max_length=254, required=False, help_text="The dashboard user's email."
    )

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip()
        if email:
            scim_rules.check_email(email)
        return email


class DashboardUserForm(forms.Form):
    """Fields of a SCIM user; `permissions` is the permissions object Braze expects."""

    email = forms.CharField(
        label="Email", max_length=254, error_messages={"required": scim_rules.EMAIL_REQUIRED}
    )
    given_name = forms.CharField(
        label="Given name",
        max_length=255,
        error_messages={"required": scim_rules.name_required("givenName")},
    )
    family_name = forms.CharField(
        label="Family name",
        max_length=255,
        error_messages={"required": scim_rules.name_required("familyName")},
    )
    department = forms.ChoiceField(
        label="Department",
        choices=scim_rules.DEPARTMENT_CHOICES,
        error_messages={
            "required": scim_rules.DEPARTMENT_INVALID,
            "invalid_choice": scim_rules.DEPARTMENT_INVALID,
        },
    )
    company_permissions = forms.MultipleChoiceField(
        label="Company permissions",
        required=False,
        choices=[(p, p) for p in scim_rules.COMPANY_PERMISSIONS],
        widget=forms.CheckboxSelectMultiple,
    )
    workspace_permissions = forms.CharField(
        label="Workspace permissions",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    # Edits only: the fingerprint of the Braze state the form was filled from.
    base_hash = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        editing: bool = False,
        mode: str = scim_rules.GRANULAR,
        base_permissions: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """`mode`: the permission names offered (BRAZE_SCIM_PERMISSIONS); `base_permissions`:
        the account's permissions as read, whose names are kept even when `mode` does not
        offer them."""
        super().__init__(*args, **kwargs)
        self.editing = editing
        self.mode = mode
        self.base_permissions = base_permissions or {}
        self.permission_names = scim_rules.workspace_permission_names(mode)
        example = scim_rules.FORM_EXAMPLES[mode]
        self.fields["workspace_permissions"].help_text = (
            "One workspace per line: the workspace name, a colon, then its permission names "
            f"separated by commas, e.g. <code>demo: {example}</code>."
        )
        if editing:
            # Braze's SCIM API cannot change a user's email (only Braze Support can).
            self.fields["email"].disabled = True
            self.fields["email"].help_text = "Braze does not allow the email to be changed."

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip()
        scim_rules.check_email(email)
        return email

    def clean_given_name(self) -> str:
        return scim_rules.check_name(self.cleaned_data["given_name"], "givenName")

    def clean_family_name(self) -> str:
        return scim_rules.check_name(self.cleaned_data["family_name"], "familyName")

    def clean_workspace_permissions(self) -> list[scim_rules.WorkspacePermissions]:
        return scim_rules.parse_workspace_lines(
            self.cleaned_data["workspace_permissions"], mode=self.mode, base=self.base_permissions
        )


MAX_REVIEW_EMAILS = 500


class AccessReviewForm(forms.Form):
    emails = forms.CharField(
        label="Dashboard user emails to look up",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=(
            "One email per line. Braze's SCIM API finds accounts only by email, so the list "
            "starts with the console's users and every dashboard user proposed here; add "
            "the emails from Braze's Security Event report to cover everyone."
        ),
    )

    def clean_emails(self) -> list[str]:
        emails = list(
            dict.fromkeys(
                line.strip().lower()
                for line in self.cleaned_data["emails"].splitlines()
                if line.strip()
            )
        )
        bad = []
        for email in emails:
            try:
                scim_rules.check_email(email)
            except forms.ValidationError:
                bad.append(email)
        if bad:
            raise forms.ValidationError(f"Not an email address: {', '.join(bad[:10])}.")
        if len(emails) > MAX_REVIEW_EMAILS:
            # Each email is one SCIM call, from a budget of 5,000 a day for the company.
            raise forms.ValidationError(
                f"At most {MAX_REVIEW_EMAILS} emails per review ({len(emails)} given)."
            )
        return emails
