import time

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page


def totp_code(username: str) -> str:
    """The next code the person's authenticator app would show that the console has not seen
    (it refuses a code at or before the last one accepted), waiting for it if need be."""
    device = TOTPDevice.objects.get(user__username=username, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    step = max(totp.t(), device.last_t + 1)
    while step > totp.t() + device.tolerance:
        time.sleep(0.5)
        totp.time = time.time()
    totp.time = device.t0 + step * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in with the password and, where the console asks for it, a code from the
    person's authenticator app (demo Reviewers and Admins have one)."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    if "/accounts/second-factor/" in page.url:
        page.get_by_label("Code").fill(totp_code(username))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state("networkidle")
