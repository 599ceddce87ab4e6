"""Second-factor screens: the second step of a password sign-in, enrolment, one's own
factors, and an Admin's reset of someone else's."""

from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from console.access import require_capability, require_login
from console.http import AuthenticatedRequest
from console.net import client_ip
from console.roles import Capability
from console.signin import signin_attempt_admit
from mfa import flow, passkeys, selectors, services
from mfa.forms import CodeForm, PasskeyForm, TotpConfirmForm
from mfa.models import PasskeyDevice

EXPIRED_MESSAGE = "Your sign-in was not finished in time. Sign in again to continue."
TOO_MANY_MESSAGE = "Too many wrong answers. Sign in again to continue."
PASSKEY_REFUSED = "That passkey was not accepted. Try again, or use a code."


def _start_over(request: HttpRequest, message: str) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("home")
    messages.info(request, message)
    return redirect("login")


def _throttled(request: HttpRequest) -> HttpResponse | None:
    if signin_attempt_admit(source=client_ip(request)):
        return None
    return render(request, "registration/locked_out.html", status=429)


def _wrong(request: HttpRequest) -> HttpResponse | None:
    """Count a wrong answer like a failed sign-in; the redirect to sign in again after the last."""
    services.second_factor_failure_count(source=client_ip(request))
    if flow.pending_failed(request):
        return _start_over(request, TOO_MANY_MESSAGE)
    return None


def _totp_setup(device: TOTPDevice) -> dict[str, object]:
    import segno  # only the enrolment screens draw a QR code

    secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
    return {
        "qr": segno.make(device.config_url, error="m").svg_data_uri(scale=4),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }


def _recovery_codes_page(request: HttpRequest, codes: list[str], next_url: str) -> HttpResponse:
    return render(request, "mfa/recovery_codes.html", {"codes": codes, "next_url": next_url})


# --- the second step of a password sign-in ---------------------------------------------------


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    pending = flow.pending_get(request)
    if pending is None:
        return _start_over(request, EXPIRED_MESSAGE)
    if not pending.enrolled:
        return redirect("mfa:enrol")
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if (refused := _throttled(request)) is not None:
            return refused
        if form.is_valid():
            device = services.second_factor_verify_code(
                user=pending.user, code=form.cleaned_data["code"]
            )
            if device is not None:
                kind = "totp" if isinstance(device, TOTPDevice) else "recovery"
                flow.signin_complete(request, pending=pending, device=device, kind=kind)
                return redirect(pending.next_url)
            if (again := _wrong(request)) is not None:
                return again
            form.add_error("code", "That code is not valid. Codes work once; wait for a new one.")
    return render(
        request,
        "mfa/verify.html",
        {
            "form": form,
            "passkeys": PasskeyDevice.objects.filter(user=pending.user).exists(),
            "passkey_form": PasskeyForm(),
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    """A person whose roles need a second factor and who has none sets one up before anything
    else (an authenticator app here, or a passkey through `passkey_register`)."""
    pending = flow.pending_get(request)
    if pending is None:
        return _start_over(request, EXPIRED_MESSAGE)
    if pending.enrolled:
        return redirect("mfa:verify")
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST":
        if (refused := _throttled(request)) is not None:
            return refused
        if form.is_valid():
            device = services.totp_device_confirm(
                user=pending.user, token=form.cleaned_data["code"]
            )
            if device is not None:
                codes = services.recovery_codes_issue(user=pending.user)
                flow.signin_complete(request, pending=pending, device=device, kind="totp")
                return _recovery_codes_page(request, codes, pending.next_url)
            if (again := _wrong(request)) is not None:
                return again
            form.add_error("code", "That code is not valid. Check the app and try again.")
    device = services.totp_device_start(user=pending.user)
    return render(
        request,
        "mfa/enrol.html",
        {"form": form, "passkey_form": PasskeyForm(), **_totp_setup(device)},
        status=400 if form.errors else 200,
    )


@require_POST
def passkey_signin_options(request: HttpRequest) -> HttpResponse:
    pending = flow.pending_get(request)
    if pending is None or not pending.enrolled:
        return _start_over(request, EXPIRED_MESSAGE)
    options, challenge = passkeys.authentication_options(
        user=pending.user, rp=passkeys.relying_party(request)
    )
    flow.challenge_keep(request, purpose="signin", challenge=challenge)
    return HttpResponse(options, content_type="application/json")


@require_POST
def passkey_signin(request: HttpRequest) -> HttpResponse:
    pending = flow.pending_get(request)
    if pending is None or not pending.enrolled:
        return _start_over(request, EXPIRED_MESSAGE)
    if (refused := _throttled(request)) is not None:
        return refused
    form = PasskeyForm(request.POST)
    challenge = flow.challenge_take(request, purpose="signin")
    device = None
    if form.is_valid() and challenge is not None:
        device = services.passkey_verify(
            user=pending.user,
            credential=form.cleaned_data["credential"],
            challenge=challenge,
            rp=passkeys.relying_party(request),
        )
    else:
        services.second_factor_failure_record(
            user=pending.user, kind=services.Kind.PASSKEY, reason="no challenge or no answer"
        )
    if device is not None:
        flow.signin_complete(request, pending=pending, device=device, kind="passkey")
        return redirect(pending.next_url)
    if (again := _wrong(request)) is not None:
        return again
    messages.error(request, PASSKEY_REFUSED)
    return redirect("mfa:verify")


# --- passkey enrolment (second step, or signed in) -------------------------------------------


def _enrolling_user(request: HttpRequest) -> tuple[User, flow.Pending | None] | None:
    """Who is adding a passkey: the signed-in person, or one at the enrolment step."""
    if request.user.is_authenticated:
        return cast(AuthenticatedRequest, request).user, None
    pending = flow.pending_get(request)
    if pending is None or pending.enrolled:
        return None
    return pending.user, pending


@require_POST
def passkey_register_options(request: HttpRequest) -> HttpResponse:
    enrolling = _enrolling_user(request)
    if enrolling is None:
        return _start_over(request, EXPIRED_MESSAGE)
    options, challenge = passkeys.registration_options(
        user=enrolling[0], rp=passkeys.relying_party(request)
    )
    flow.challenge_keep(request, purpose="register", challenge=challenge)
    return HttpResponse(options, content_type="application/json")


@require_POST
def passkey_register(request: HttpRequest) -> HttpResponse:
    enrolling = _enrolling_user(request)
    if enrolling is None:
        return _start_over(request, EXPIRED_MESSAGE)
    user, pending = enrolling
    if pending is not None and (refused := _throttled(request)) is not None:
        return refused
    form = PasskeyForm(request.POST)
    challenge = flow.challenge_take(request, purpose="register")
    credential = None
    if form.is_valid() and challenge is not None:
        try:
            credential = passkeys.registration_verify(
                credential=form.cleaned_data["credential"],
                challenge=challenge,
                rp=passkeys.relying_party(request),
            )
        except (ValueError, KeyError, TypeError, passkeys.WebAuthnException):
            credential = None
    if credential is None:
        services.second_factor_failure_record(
            user=user, kind=services.Kind.PASSKEY, reason="registration refused"
        )
        if pending is not None and (again := _wrong(request)) is not None:
            return again
        messages.error(request, "The passkey could not be added. Try again.")
        return redirect("mfa:enrol" if pending is not None else "mfa:devices")
    device = services.passkey_device_add(
        user=user, credential=credential, name=form.cleaned_data["name"]
    )
    if pending is not None:
        codes = services.recovery_codes_issue(user=user)
        flow.signin_complete(request, pending=pending, device=device, kind="passkey")
        return _recovery_codes_page(request, codes, pending.next_url)
    return _after_adding(request, user)


def _after_adding(request: HttpRequest, user: User) -> HttpResponse:
    """A first factor comes with recovery codes, shown at once; later ones keep the codes."""
    messages.success(request, "Second factor added.")
    if selectors.recovery_codes_left(user=user) == 0:
        codes = services.recovery_codes_issue(user=user)
        return _recovery_codes_page(request, codes, reverse("mfa:devices"))
    return redirect("mfa:devices")


# --- one's own factors -----------------------------------------------------------------------


@require_GET
@require_login()
def devices(request: AuthenticatedRequest) -> HttpResponse:
    return render(
        request,
        "mfa/devices.html",
        {
            "devices": selectors.devices_list(user=request.user),
            "required": selectors.second_factor_required(user=request.user),
            "recovery_left": selectors.recovery_codes_left(user=request.user),
            "this_session": request.session.get(flow.SECOND_FACTOR),
            "passkey_form": PasskeyForm(),
        },
    )


@require_http_methods(["GET", "POST"])
@require_login()
def totp_add(request: AuthenticatedRequest) -> HttpResponse:
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = services.totp_device_confirm(user=request.user, token=form.cleaned_data["code"])
        if device is not None:
            return _after_adding(request, request.user)
        form.add_error("code", "That code is not valid. Check the app and try again.")
    device = services.totp_device_start(user=request.user)
    return render(
        request,
        "mfa/totp_add.html",
        {"form": form, **_totp_setup(device)},
        status=400 if form.errors else 200,
    )


@require_POST
@require_login()
def device_remove(request: AuthenticatedRequest, kind: str, pk: int) -> HttpResponse:
    device: TOTPDevice | PasskeyDevice
    if kind == "totp":
        device = get_object_or_404(TOTPDevice, pk=pk, user=request.user, confirmed=True)
    elif kind == "passkey":
        device = get_object_or_404(PasskeyDevice, pk=pk, user=request.user, confirmed=True)
    else:
        raise Http404
    try:
        services.device_remove(actor=request.user, device=device)
    except services.SecondFactorError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Removed {device.name}.")
    return redirect("mfa:devices")


@require_POST
@require_login()
def recovery_codes_new(request: AuthenticatedRequest) -> HttpResponse:
    if selectors.factor_count(user=request.user) == 0:
        messages.error(request, "Add an authenticator app or a passkey first.")
        return redirect("mfa:devices")
    codes = services.recovery_codes_issue(user=request.user)
    return _recovery_codes_page(request, codes, reverse("mfa:devices"))


# --- an Admin resets someone else's ----------------------------------------------------------


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def person(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    if request.method == "POST":
        try:
            proposal = services.devices_reset_propose(actor=request.user, user=user)
        except services.SecondFactorError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                "The reset is proposed: another Admin approves it, then they set up a new "
                "second factor at their next sign-in.",
            )
            return redirect(proposal.get_absolute_url())
        return redirect("mfa:person", pk=user.pk)
    return render(
        request,
        "mfa/person.html",
        {
            "person": user,
            "devices": selectors.devices_list(user=user),
            "required": selectors.second_factor_required(user=user),
            "recovery_left": selectors.recovery_codes_left(user=user),
        },
    )
