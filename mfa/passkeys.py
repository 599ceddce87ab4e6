"""WebAuthn ceremonies through py_webauthn: options for the browser, and verification of
what it sends back. Challenges are single-use; the relying party is this console's host."""

import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from mfa.models import PasskeyDevice


@dataclass(frozen=True, slots=True)
class RelyingParty:
    rp_id: str
    origins: list[str]


def relying_party(request: HttpRequest) -> RelyingParty:
    """The configured relying party, or the request's own host and origin (validated against
    ALLOWED_HOSTS by `get_host`)."""
    host = request.get_host()
    rp_id = settings.MFA_WEBAUTHN_RP_ID or host.rsplit(":", 1)[0].strip("[]")
    origins = settings.MFA_WEBAUTHN_ORIGINS or [f"{request.scheme}://{host}"]
    return RelyingParty(rp_id=rp_id, origins=list(origins))


def _user_handle(user: AbstractBaseUser) -> bytes:
    # Stable per account (an authenticator replaces its own credential for it) and no
    # personal data, as the WebAuthn user handle must not carry any.
    return hashlib.sha256(f"braze-console-user:{user.pk}".encode()).digest()


def registration_options(*, user: AbstractBaseUser, rp: RelyingParty) -> tuple[str, str]:
    """The creation options as JSON, and their challenge (base64url) to keep for the answer."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=settings.OTP_TOTP_ISSUER,
        user_name=user.get_username(),
        user_id=_user_handle(user),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=bytes(d.credential_id))
            for d in PasskeyDevice.objects.filter(user_id=user.pk)
        ],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


@dataclass(frozen=True, slots=True)
class NewCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int


def registration_verify(*, credential: str, challenge: str, rp: RelyingParty) -> NewCredential:
    """Raises WebAuthnException (or ValueError for malformed JSON) when it does not verify."""
    verified = verify_registration_response(
        credential=credential,
        expected_challenge=base64url_to_bytes(challenge),
        expected_rp_id=rp.rp_id,
        expected_origin=rp.origins,
    )
    return NewCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
    )


def authentication_options(*, user: AbstractBaseUser, rp: RelyingParty) -> tuple[str, str]:
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=bytes(d.credential_id))
            for d in PasskeyDevice.objects.filter(user_id=user.pk, confirmed=True)
        ],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def credential_id_of(credential: str) -> bytes:
    """The credential id the browser's answer names (not yet verified)."""
    data = json.loads(credential)
    if not isinstance(data, dict) or not isinstance(data.get("rawId"), str):
        raise ValueError("no rawId")
    return base64url_to_bytes(data["rawId"])


def authentication_verify(
    *, credential: str, challenge: str, rp: RelyingParty, device: PasskeyDevice
) -> int:
    """The authenticator's new signature counter; raises WebAuthnException if it does not
    verify (wrong signature, origin, challenge, or a counter that went backwards)."""
    verified = verify_authentication_response(
        credential=credential,
        expected_challenge=base64url_to_bytes(challenge),
        expected_rp_id=rp.rp_id,
        expected_origin=rp.origins,
        credential_public_key=bytes(device.public_key),
        credential_current_sign_count=device.sign_count,
    )
    return verified.new_sign_count


__all__ = ["WebAuthnException"]
