from django.urls import path

from mfa import views

app_name = "mfa"
urlpatterns = [
    # The second step of a password sign-in (no session user yet).
    path("second-factor/", views.verify, name="verify"),
    path("second-factor/enrol/", views.enrol, name="enrol"),
    path("second-factor/passkey/options", views.passkey_signin_options, name="passkey_options"),
    path("second-factor/passkey/", views.passkey_signin, name="passkey_signin"),
    # Passkey enrolment: at that step, or signed in.
    path("passkeys/new/options", views.passkey_register_options, name="passkey_new_options"),
    path("passkeys/new/", views.passkey_register, name="passkey_new"),
    # One's own factors.
    path("security/", views.devices, name="devices"),
    path("security/app/", views.totp_add, name="totp_add"),
    path("security/<str:kind>/<int:pk>/remove", views.device_remove, name="device_remove"),
    path("security/recovery-codes", views.recovery_codes_new, name="recovery_codes"),
    # An Admin resets someone else's.
    path("security/people/<int:pk>/", views.person, name="person"),
]
