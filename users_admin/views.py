"""Screens of the Users section.

Access: console users are managed by Admins (MANAGE_USERS). Dashboard users hold names,
emails and Braze permissions of staff, so reading them is limited to Admins and Auditors
(MANAGE_USERS or AUDIT) rather than every role that may BROWSE; proposing a change, and
approving one, is for Admins. The access review and its export are for Auditors and Admins
(AUDIT).
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.access import require_capability
from console.braze import BrazeConfigurationError, BrazeError, BrazeNotFound, describe_error
from console.braze.client import ScimUser
from console.changes.models import ChangeRequest
from console.changes.services import ChangeRequestError
from console.http import AuthenticatedRequest, htmx_targets
from console.roles import Capability, Role, user_capabilities
from console.tables import Column, list_template, table_from_queryset, table_from_rows
from console.workspace_urls import workspace_reverse
from users_admin import scim_rules, selectors, services
from users_admin.appliers import snapshot, snapshot_hash
from users_admin.forms import (
    AccessReviewForm,
    ConsoleUserFilterForm,
    DashboardUserForm,
    DashboardUserSearchForm,
    UserCreateForm,
    UserRolesForm,
    WorkspaceRolesForm,
    roles_from,
)
from users_admin.selectors import ConsoleUserRow, DashboardUserRow


@require_GET
@require_capability(Capability.MANAGE_USERS, Capability.AUDIT)
def index(request: AuthenticatedRequest) -> HttpResponse:
    can_manage = Capability.MANAGE_USERS in user_capabilities(request.user)
    return render(request, "users_admin/index.html", {"can_manage_users": can_manage})


# --- console users -----------------------------------------------------------------------


def _status(user: User) -> str:
    return "Active" if user.is_active else "Deactivated"


CONSOLE_USER_COLUMNS: list[Column[User]] = [
    Column(
        "username",
        "Username",
        link=lambda u: reverse("users_admin:user_detail", args=[u.pk]),
    ),
    Column("name", "Name", value=lambda u: u.get_full_name(), order_by="last_name"),
    Column("email", "Email"),
    Column(
        "roles",
        "Roles",
        value=lambda u: ", ".join(selectors.console_user_role_names(user=u)) or "No role",
        sortable=False,
    ),
    Column("last_login", "Last sign-in"),
    Column("is_active", "Status", value=_status),
]


@require_GET
@require_capability(Capability.MANAGE_USERS)
def console_users(request: AuthenticatedRequest) -> HttpResponse:
    form = ConsoleUserFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    users = selectors.console_user_list(
        query=filters.get("q", ""), role=filters.get("role", ""), status=filters.get("status", "")
    )
    table = table_from_queryset(
        request,
        users,
        CONSOLE_USER_COLUMNS,
        default_sort="username",
        empty_message="No console user matches these filters.",
    )
    return render(
        request,
        list_template(request, "users_admin/console_users.html"),
        {"form": form, "table": table},
    )


def _awaiting(cr: ChangeRequest) -> str:
    return (
        f"{cr.title}: proposed as change request #{cr.pk}. Reviewer and Admin are given "
        "once another Admin approves."
    )


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def user_create(request: AuthenticatedRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = services.user_create(
            actor=request.user,
            username=data["username"],
            email=data["email"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            roles=roles_from(data["roles"]),
            base_url=request.build_absolute_uri("/"),
        )
        messages.success(
            request,
            f"{user.get_username()} was invited: a one-time link to choose a password "
            f"was emailed to {user.email}.",
        )
        for cr in selectors.console_user_role_requests(user=user):
            messages.info(request, _awaiting(cr))
        return redirect("users_admin:user_detail", pk=user.pk)
    return render(request, "users_admin/user_create.html", {"form": form})


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def user_detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """One screen, several actions told apart by the submit button's `action` value."""
    user = selectors.console_user_get(pk=pk)
    roles_form = UserRolesForm(initial={"roles": selectors.console_user_role_names(user=user)})
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "roles":
                roles_form = UserRolesForm(request.POST)
                if roles_form.is_valid():
                    roles = roles_from(roles_form.cleaned_data["roles"])
                    cr = services.user_set_roles(actor=request.user, user=user, roles=roles)
                    if cr is not None:
                        messages.success(request, _awaiting(cr))
                        return redirect(cr.get_absolute_url())
                    messages.success(request, f"The roles of {user.get_username()} were saved.")
                    return redirect("users_admin:user_detail", pk=user.pk)
                status = 400
            elif action == "deactivate":
                services.user_deactivate(actor=request.user, user=user)
                messages.success(request, f"{user.get_username()} was deactivated.")
                return redirect("users_admin:user_detail", pk=user.pk)
            elif action == "reactivate":
                services.user_reactivate(actor=request.user, user=user)
                messages.success(request, f"{user.get_username()} was reactivated.")
                return redirect("users_admin:user_detail", pk=user.pk)
            elif action == "resend":
                services.user_invitation_resend(
                    actor=request.user, user=user, base_url=request.build_absolute_uri("/")
                )
                messages.success(request, f"A new password link was emailed to {user.email}.")
                return redirect("users_admin:user_detail", pk=user.pk)
            else:
                messages.error(request, "Unknown action.")
                status = 400
        except services.SelfLockoutError as exc:
            messages.error(request, str(exc))
            status = 409
    return render(
        request,
        "users_admin/user_detail.html",
        {
            "subject": user,
            "roles_form": roles_form,
            "role_names": selectors.console_user_role_names(user=user),
            "is_self": user.pk == request.user.pk,
            "awaiting_password": not user.has_usable_password(),
            "admin_role": Role.ADMIN.value,
            "role_requests": selectors.console_user_role_requests(user=user),
            "workspace_rows": _workspace_rows(user),
        },
        status=status,
    )


def _workspace_rows(user: User) -> list[dict[str, Any]]:
    return [
        {
            "row": row,
            # Each workspace's own URL: the form acts in the workspace it is opened in.
            "url": workspace_reverse(
                "users_admin:user_workspace_roles", workspace=row.workspace.key, args=[user.pk]
            ),
        }
        for row in selectors.console_user_workspace_rows(user=user)
    ]


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def user_workspace_roles(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """A person's roles in the workspace of the URL: the same as console-wide, or its own.

    Every change is proposed as a change request of this workspace (the actor must manage
    users here; another Admin here approves it)."""
    user = selectors.console_user_get(pk=pk)
    workspace = request.workspace.key
    row = next(
        (
            r
            for r in selectors.console_user_workspace_rows(user=user)
            if r.workspace.key == workspace
        ),
        None,
    )
    if row is None:
        raise Http404("No such workspace.")
    initial = {
        "scope": "console" if row.same_as_console_wide else "workspace",
        "roles": [] if row.same_as_console_wide else row.roles,
    }
    form = WorkspaceRolesForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                cr = services.user_workspace_roles_propose(
                    actor=request.user, user=user, workspace=workspace, roles=form.chosen_roles()
                )
            except services.SelfLockoutError as exc:
                form.add_error(None, str(exc))
                status = 409
            except ChangeRequestError as exc:
                form.add_error(None, str(exc))
            else:
                if cr is None:
                    messages.info(
                        request,
                        f"{user.get_username()} already has these roles in "
                        f"{row.workspace.label}: nothing was proposed.",
                    )
                    return redirect("users_admin:user_detail", pk=user.pk)
                messages.success(
                    request,
                    f"{cr.title}: proposed as change request #{cr.pk}. The roles change "
                    "once another Admin of this workspace approves.",
                )
                return redirect(cr.get_absolute_url())
    return render(
        request,
        "users_admin/user_workspace_roles.html",
        {
            "subject": user,
            "row": row,
            "form": form,
            "console_wide": selectors.console_user_role_names(user=user),
            "is_self": user.pk == request.user.pk,
        },
        status=status,
    )


# Public on purpose: the invited person has no session yet. The token is Django's
# password-reset token, which stops working once a password is set or they sign in.
class SetPasswordView(PasswordResetConfirmView):
    template_name = "users_admin/set_password.html"
    success_url = reverse_lazy("login")
    post_reset_login = False

    def form_valid(self, form: SetPasswordForm[User]) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set. Sign in with it now.")
        return response


set_password = SetPasswordView.as_view()


# --- Braze dashboard users (SCIM) -------------------------------------------------------

DASHBOARD_USER_COLUMNS: list[Column[DashboardUserRow]] = [
    Column(
        "email",
        "Email",
        link=lambda r: (
            reverse("users_admin:dashboard_user_detail", args=[r.user_id]) if r.user_id else None
        ),
    ),
    Column("name", "Name"),
    Column("department", "Department"),
    Column("permissions", "Permissions", sortable=False),
    Column("last_sign_in", "Last sign-in"),
    Column("status", "Status"),
]


@require_GET
@require_capability(Capability.MANAGE_USERS, Capability.AUDIT)
def dashboard_users(request: AuthenticatedRequest) -> HttpResponse:
    form = DashboardUserSearchForm(request.GET)
    rows: list[DashboardUserRow] = []
    error = ""
    email = form.cleaned_data["email"] if form.is_valid() else ""
    empty = "Search for a dashboard user by their email."
    # Said before anything is sent: without its settings the console makes no SCIM call.
    setup_problem = selectors.dashboard_users_setup_problem()
    if setup_problem:
        error, email = setup_problem, ""
        empty = "Dashboard users cannot be looked up until SCIM is set up."
    if email:
        try:
            found = selectors.dashboard_user_search(email=email)
        except BrazeError as exc:
            error = describe_error(exc)
        else:
            rows = [selectors.dashboard_user_row(found)] if found else []
            empty = f"Braze has no dashboard user with the email {email}."
    table = table_from_rows(
        request, rows, DASHBOARD_USER_COLUMNS, default_sort="email", empty_message=empty
    )
    return render(
        request,
        list_template(request, "users_admin/dashboard_users.html"),
        {
            "form": form,
            "table": table,
            "error": error,
            "can_propose": Capability.MANAGE_USERS in user_capabilities(request.user),
            "setup_problem": setup_problem,
        },
    )


def _load_dashboard_user(request: AuthenticatedRequest, user_id: str) -> ScimUser | HttpResponse:
    """The account from Braze, or the page that says in words why it could not be read."""
    try:
        return selectors.dashboard_user_get(user_id=user_id)
    except BrazeNotFound:
        raise Http404("Braze has no dashboard user with this ID.") from None
    except BrazeError as exc:
        error = describe_error(exc)
        if isinstance(exc, BrazeConfigurationError):
            error = f"{error} {selectors.dashboard_users_setup_problem()}".strip()
        return render(
            request,
            "users_admin/dashboard_user_unavailable.html",
            {"error": error},
            status=502,
        )


def _permission_mode() -> str:
    return str(settings.BRAZE_SCIM_PERMISSIONS)


@require_GET
@require_capability(Capability.MANAGE_USERS, Capability.AUDIT)
def dashboard_user_detail(request: AuthenticatedRequest, user_id: str) -> HttpResponse:
    loaded = _load_dashboard_user(request, user_id)
    if isinstance(loaded, HttpResponse):
        return loaded
    return render(
        request,
        "users_admin/dashboard_user_detail.html",
        {
            "account": loaded,
            "department": scim_rules.DEPARTMENTS.get(loaded.department, loaded.department),
            "access": selectors.dashboard_user_access(loaded.permissions),
            "legacy_end": scim_rules.LEGACY_END,
            "can_propose": Capability.MANAGE_USERS in user_capabilities(request.user),
        },
    )


def _proposed(request: AuthenticatedRequest, cr: ChangeRequest) -> HttpResponse:
    messages.success(
        request,
        f"Proposed as change request #{cr.pk}. Another Admin must approve it before Braze changes.",
    )
    return redirect(cr.get_absolute_url())


def _permissions_from(
    form: DashboardUserForm, base: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    try:
        return scim_rules.permissions_object(
            company=form.cleaned_data["company_permissions"],
            workspaces=form.cleaned_data["workspace_permissions"],
            base=base,
        )
    except ValidationError as exc:
        form.add_error("company_permissions", exc)
        return None


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def dashboard_user_create(request: AuthenticatedRequest) -> HttpResponse:
    form = DashboardUserForm(request.POST or None, mode=_permission_mode())
    status = 200
    if request.method == "POST":
        permissions = _permissions_from(form) if form.is_valid() else None
        if permissions is not None:
            data = form.cleaned_data
            try:
                cr = services.dashboard_user_propose_create(
                    actor=request.user,
                    email=data["email"],
                    given_name=data["given_name"],
                    family_name=data["family_name"],
                    department=data["department"],
                    permissions=permissions,
                )
            except ChangeRequestError as exc:
                form.add_error(None, str(exc))
            else:
                return _proposed(request, cr)
        status = 400
    return render(
        request,
        "users_admin/dashboard_user_form.html",
        {
            "form": form,
            "creating": True,
            "setup_problem": selectors.dashboard_users_setup_problem(),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def dashboard_user_edit(request: AuthenticatedRequest, user_id: str) -> HttpResponse:
    loaded = _load_dashboard_user(request, user_id)
    if isinstance(loaded, HttpResponse):
        return loaded
    base = snapshot(loaded)
    base_hash = snapshot_hash(base)
    initial = {
        "email": loaded.user_name,
        "given_name": loaded.given_name,
        "family_name": loaded.family_name,
        "department": loaded.department,
        "company_permissions": loaded.permissions.get("companyPermissions") or [],
        "workspace_permissions": scim_rules.workspace_lines(loaded.permissions),
        "base_hash": base_hash,
    }
    form = DashboardUserForm(
        request.POST or None,
        initial=initial,
        editing=True,
        mode=_permission_mode(),
        base_permissions=loaded.permissions,
    )
    status = 200
    if request.method == "POST":
        permissions = _permissions_from(form, base["permissions"]) if form.is_valid() else None
        if permissions is not None and form.cleaned_data["base_hash"] != base_hash:
            # Someone changed the account in Braze since this form was opened.
            form.add_error(
                None,
                "This account changed in Braze since you opened the form. Check the current "
                "values on its page; your entries are kept here. Submit again to propose them.",
            )
            fresh = request.POST.copy()
            fresh["base_hash"] = base_hash
            form.data = fresh
            permissions = None
        if permissions is not None:
            data = form.cleaned_data
            try:
                cr = services.dashboard_user_propose_update(
                    actor=request.user,
                    user_id=user_id,
                    base_snapshot=base,
                    given_name=data["given_name"],
                    family_name=data["family_name"],
                    department=data["department"],
                    permissions=permissions,
                )
            except ChangeRequestError as exc:
                form.add_error(None, str(exc))
            else:
                return _proposed(request, cr)
        status = 400
    return render(
        request,
        "users_admin/dashboard_user_form.html",
        {
            "form": form,
            "creating": False,
            "account": loaded,
            "access": selectors.dashboard_user_access(loaded.permissions),
            "legacy_end": scim_rules.LEGACY_END,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def dashboard_user_remove(request: AuthenticatedRequest, user_id: str) -> HttpResponse:
    loaded = _load_dashboard_user(request, user_id)
    if isinstance(loaded, HttpResponse):
        return loaded
    error = ""
    if request.method == "POST":
        try:
            cr = services.dashboard_user_propose_remove(
                actor=request.user, user_id=user_id, base_snapshot=snapshot(loaded)
            )
        except ChangeRequestError as exc:
            error = str(exc)
        else:
            return _proposed(request, cr)
    return render(
        request,
        "users_admin/dashboard_user_remove.html",
        {"account": loaded, "error": error},
        status=400 if error else 200,
    )


# --- access review -------------------------------------------------------------------------

CONSOLE_REVIEW_COLUMNS: list[Column[ConsoleUserRow]] = [
    Column("username", "Username"),
    Column("name", "Name"),
    Column("email", "Email"),
    Column("roles", "Roles"),
    Column("last_sign_in", "Last sign-in"),
    Column("status", "Status"),
]


def _review_emails(request: AuthenticatedRequest) -> tuple[AccessReviewForm, list[str] | None]:
    # GET: the list to start from; POST (Look up): the list as edited.
    source = request.POST
    if request.method != "POST" or "emails" not in source:
        form = AccessReviewForm(
            initial={"emails": "\n".join(selectors.access_review_known_emails())}
        )
        return form, None
    form = AccessReviewForm(source)
    return form, form.cleaned_data["emails"] if form.is_valid() else None


def _review_url(token: str) -> str:
    return f"{reverse('users_admin:access_review')}?run={token}"


@require_http_methods(["GET", "POST"])
@require_capability(Capability.AUDIT)
def access_review(request: AuthenticatedRequest) -> HttpResponse:
    """Console users from the database; dashboard users from a queued look-up (never SCIM
    calls in this request: each is one of the company's 5,000 a day)."""
    if request.method == "POST" and request.POST.get("action") == "continue":
        token = request.POST.get("run", "")
        if services.access_review_continue(actor=request.user, token=token):
            messages.success(request, "The rest of the emails are queued to be looked up.")
        return redirect(_review_url(token))
    form, emails = _review_emails(request)
    if emails is not None:
        token = services.access_review_start(actor=request.user, emails=emails)
        messages.success(request, f"{len(emails):,} emails are queued to be looked up in Braze.")
        return redirect(_review_url(token))
    run = None
    if token := request.GET.get("run", ""):
        run = selectors.access_review_run_get(user=request.user, token=token)
        if run is None:
            messages.error(request, "That look-up has expired; look the emails up again.")
    if htmx_targets(request, "review-run"):
        return render(request, "users_admin/access_review.html#run", _run_context(request, run))
    console_table = table_from_rows(
        request,
        selectors.access_review_console_rows(),
        CONSOLE_REVIEW_COLUMNS,
        default_sort="username",
        empty_message="There are no console users.",
        page_size=500,
    )
    context = {"form": form, "table": console_table, **_run_context(request, run)}
    if run is not None and request.method == "GET":
        form = AccessReviewForm(initial={"emails": "\n".join(run.emails)})
        context["form"] = form
    return render(
        request,
        "users_admin/access_review.html",
        context,
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


def _run_context(
    request: AuthenticatedRequest, run: selectors.AccessReviewRun | None
) -> dict[str, Any]:
    budget = {
        "scim_calls_left": selectors.access_review_scim_calls_left(),
        "daily_share": settings.ACCESS_REVIEW_SCIM_CALLS_PER_DAY,
    }
    if run is None:
        return {"run": None, **budget}
    table = table_from_rows(
        request,
        run.all_rows(),
        DASHBOARD_USER_COLUMNS,
        default_sort="email",
        empty_message="No emails to look up.",
        page_size=500,
    )
    return {
        "run": run,
        "dashboard_table": table,
        "looked_up": len(run.rows),
        **budget,
    }


@require_POST
@require_capability(Capability.AUDIT)
def access_review_export(request: AuthenticatedRequest) -> HttpResponse:
    """The console users and a look-up's dashboard users as CSV (no SCIM call is made)."""
    run = selectors.access_review_run_get(user=request.user, token=request.POST.get("run", ""))
    if run is None:
        messages.error(
            request,
            "Look the dashboard users up first: the export holds what the look-up found.",
        )
        return redirect("users_admin:access_review")
    services.access_review_export_record(actor=request.user, emails=run.emails)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        selectors.access_review_csv(run=run), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="access-review-{stamp}.csv"'
    # require_capability types views as returning HttpResponse; a stream is one too for Django.
    return response  # type: ignore[return-value]
