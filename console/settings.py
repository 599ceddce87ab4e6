"""One settings file, driven by the environment (see the README's configuration table).

Development defaults are safe only on a laptop: with DEBUG off, SECRET_KEY must be set
and HTTPS settings switch on unless HTTPS=0 is given explicitly (tests on plain HTTP).
"""

import hashlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from console import logs as console_logs
from console.error_reporting import error_reporting_init
from console.workspaces import workspaces_from_env

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
TESTING = env_bool("TESTING", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "development-only-insecure-key-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "console",
    "catalogs",
    "catalog_bulk",
    "templates_app",
    "bundles",
    "users_admin",
    "sso",
    # Second factor for local accounts (mfa/, django-otp).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "mfa",
]

MIDDLEWARE = [
    # Outermost: times the whole request, and counts what other middleware refuses.
    "console.metrics.views.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside every other middleware, so redirects, 403s and lock-out pages are covered too
    # (WhiteNoise, inserted before it below, serves static files with their own headers).
    "console.cache_headers.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Takes /w/<key>/ off the path before anything resolves it (console/workspace_urls.py).
    "console.workspace_urls.WorkspaceMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Inside the messages middleware: its notice must be saved with the session.
    "console.workspace_urls.WorkspaceSwitchFallbackMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Axes must come last so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
    # Who, from where: the audit service reads the request's IP and user agent from here.
    "console.audit.context.AuditRequestMiddleware",
    # Idle and absolute session limits, and sessions whose roles changed (after the audit
    # origin is set, as ending a session is audited).
    "console.sessions.SessionLimitsMiddleware",
    # Sessions bound to their sign-in method; SSO sessions re-validated with the provider.
    "sso.middleware.SsoSessionMiddleware",
]

if not (DEBUG or TESTING):
    # Production serves collected static files itself; runserver and the test
    # live server serve them from static/ directly.
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.navigation",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://console@localhost/console"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if os.environ.get("DATABASE_OWNER_URL"):
    # The run-time login (DATABASE_URL) owns nothing. scripts/run migrates with
    # DATABASE_URL set to this owner URL; the alias serves owner-only maintenance.
    DATABASES["owner"] = dj_database_url.parse(os.environ["DATABASE_OWNER_URL"])
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
# The login that gets least privilege on every table (and none to change the audit trail).
DATABASE_RUNTIME_ROLE = os.environ.get("DATABASE_RUNTIME_ROLE", "console_app")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Passwords (only break-glass Admins' when SSO_LOCAL_PASSWORDS is off), then the IdP.
    "sso.backends.LocalPasswordBackend",
    "sso.backends.OidcBackend",
]
# A password is the only factor, so it must be long: NIST SP 800-63B-4 (section 3.1.1.2)
# requires 15 characters for a password used as a single-factor authenticator. No
# composition rules (the same section forbids them); common and username-like ones refused.
PASSWORD_MIN_LENGTH = int(os.environ.get("PASSWORD_MIN_LENGTH", "15"))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The client's address (console/net.py), for sign-in throttling and the audit trail alike:
# the number of reverse proxies in front of the console whose X-Forwarded-For entries are
# trusted. 0: the peer address is the client; behind one proxy that appends to the header, 1.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# Sign-in throttling. Axes locks a username for one client address after five failures
# (the owner signs in from elsewhere; no one can lock them out from afar). Before any
# password is checked, console/signin.py refuses an address with too many failures in the
# window (spraying many usernames), and, once failures from everywhere pass the global
# limit, every address that has failed in the window (a distributed attack).
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "console.net.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
SIGNIN_WINDOW_SECONDS = int(os.environ.get("SIGNIN_WINDOW_SECONDS", "900"))
SIGNIN_IP_FAILURE_LIMIT = int(os.environ.get("SIGNIN_IP_FAILURE_LIMIT", "30"))
SIGNIN_GLOBAL_FAILURE_LIMIT = int(os.environ.get("SIGNIN_GLOBAL_FAILURE_LIMIT", "300"))
# Failed sign-ins in the audit trail: per window, this many sources get an entry for their
# first failure and one for the rest; all other sources share one entry.
SIGNIN_AUDIT_SOURCES = int(os.environ.get("SIGNIN_AUDIT_SOURCES", "100"))

# Single sign-on with OpenID Connect (sso/, README "Single sign-on"). On when OIDC_ISSUER is
# set; the provider's endpoints come from its discovery document, read once at start.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "")
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "")
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "your company account")
OIDC_RP_SCOPES = os.environ.get("OIDC_SCOPES", "openid email profile")
# ID tokens are accepted signed with these only (asymmetric: the secret forges nothing).
OIDC_ALGORITHMS = env_list("OIDC_ALGORITHMS", "RS256,ES256")
OIDC_RP_SIGN_ALGO = "RS256"  # mozilla-django-oidc: verify against the JWKS (sso/backends.py)
OIDC_CLOCK_SKEW_SECONDS = min(int(os.environ.get("OIDC_CLOCK_SKEW_SECONDS", "60")), 300)
OIDC_TIMEOUT = float(os.environ.get("OIDC_TIMEOUT", "10"))
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True  # the id_token_hint of RP-initiated logout
OIDC_STORE_ACCESS_TOKEN = True  # re-validation without a refresh token (sso/middleware.py)
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:callback"
OIDC_OP_LOGOUT_URL_METHOD = "sso.views.provider_logout_url"
# Console roles from the IdP's groups: "okta-braze-editors=Editor,okta-braze-admins=Admin".
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
OIDC_ROLE_MAP = os.environ.get("OIDC_ROLE_MAP", "")
# SSO sessions end this long after signing in, and are checked with the provider this often.
SSO_SESSION_MAX_AGE = int(os.environ.get("SSO_SESSION_MAX_AGE", str(8 * 3600)))
OIDC_REVALIDATE_SECONDS = int(os.environ.get("OIDC_REVALIDATE_SECONDS", "300"))
# With SSO on, SSO_LOCAL_PASSWORDS=0 leaves passwords to these Admin accounts only (every
# such sign-in is audited and emailed to the other Admins).
SSO_LOCAL_PASSWORDS = env_bool("SSO_LOCAL_PASSWORDS", True)
SSO_BREAK_GLASS_USERNAMES = env_list("SSO_BREAK_GLASS_USERNAMES")
# django-axes' per-username lockouts do not apply to sign-ins through the provider.
AXES_WHITELIST_CALLABLE = "sso.backends.axes_exempt"
SSO_FORM_ACTION: list[str] = []
if OIDC_ISSUER:
    # Only the web process is given the secret (console/processes.py).
    if not OIDC_RP_CLIENT_ID or (
        not OIDC_RP_CLIENT_SECRET and os.environ.get("CONSOLE_PROCESS", "web") == "web"
    ):
        raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET.")
    _idp = urlsplit(OIDC_ISSUER)
    # Sign-out is a form whose answer redirects to the provider's end-session endpoint.
    SSO_FORM_ACTION.append(f"{_idp.scheme}://{_idp.netloc}")
# Second factor for local (password) sign-in (mfa/): people holding one of these roles must
# pass one (and enrol one first); anyone else may enrol. A password sign-in waits this long for
# the second step, which allows this many wrong answers before the password is asked again.
MFA_REQUIRED_ROLES = env_list("MFA_REQUIRED_ROLES", "Reviewer,Admin")
MFA_PENDING_SECONDS = int(os.environ.get("MFA_PENDING_SECONDS", "600"))
MFA_PENDING_MAX_FAILURES = int(os.environ.get("MFA_PENDING_MAX_FAILURES", "5"))
MFA_RECOVERY_CODES = 10
# Passkeys: the relying party id and the origins accepted (empty: the request's own host and
# origin; browsers accept a domain name or "localhost", never an IP address).
MFA_WEBAUTHN_RP_ID = os.environ.get("MFA_WEBAUTHN_RP_ID", "")
MFA_WEBAUTHN_ORIGINS = env_list("MFA_WEBAUTHN_ORIGINS")
OTP_TOTP_ISSUER = "Braze Content Console"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

if TESTING:
    # Hashing passwords slowly protects nothing in a throw-away test database.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Absolute: Django prefixes a relative one with the script prefix of the request that first
# reads it, and with several workspaces that prefix is the workspace's (/w/<key>/).
STATIC_URL = "/static/"
# collectstatic writes here at each release; WhiteNoise serves it in production.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / ".run" / "media"))

# Content Security Policy (Django's built-in). Scripts need the per-request nonce;
# Braze HTML is only ever shown inside sandboxed iframes served from our origin.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-src": [CSP.SELF],
    # Preview views that must be framed opt in per view (xframe_options_sameorigin).
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF, *SSO_FORM_ACTION],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"

# HTTPS hardening is on in production and off for local HTTP (DEBUG, or HTTPS=0).
HTTPS = env_bool("HTTPS", not DEBUG and not TESTING)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
# Sessions (console/sessions.py): signed out SESSION_COOKIE_AGE after signing in whatever
# happens, after SESSION_IDLE_TIMEOUT seconds without a request, and when their roles change.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SESSION_IDLE_TIMEOUT = int(os.environ.get("SESSION_IDLE_TIMEOUT", str(30 * 60)))
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server, another database number (redis:// path or unix:// ?db=)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        # urlunsplit would drop the "//" of a unix:// URL without a host.
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


# Template previews are HTML people type or Braze holds, up to PREVIEW_MAX_BYTES each: they
# live in a database of their own, never in the one the Celery broker and the limiter use.
PREVIEW_REDIS_URL = os.environ.get("PREVIEW_REDIS_URL", redis_url_with_db(REDIS_URL, 1))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "console",
    },
    "previews": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": PREVIEW_REDIS_URL,
        "KEY_PREFIX": "preview",
    },
}
# Braze holds email bodies up to 400 KB (Content Blocks: 50 KB); a preview is at most this.
PREVIEW_MAX_BYTES = int(os.environ.get("PREVIEW_MAX_BYTES", str(512 * 1024)))
# Per person: previews made in any one minute (the editor asks one per pause in typing), and
# previews kept at once (the oldest is dropped).
PREVIEW_RATE_PER_MINUTE = int(os.environ.get("PREVIEW_RATE_PER_MINUTE", "120"))
PREVIEW_MAX_PER_USER = int(os.environ.get("PREVIEW_MAX_PER_USER", "20"))

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Tasks are short and idempotent: acknowledge after running so a killed worker's
# task is redelivered; PostgreSQL, not the broker, holds the record of work.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Worker processes lower their CPU priority by this much, so a bulk job sharing a host with
# the web process does not slow the screens people are waiting on (0: leave it).
WORKER_NICENESS = int(os.environ.get("WORKER_NICENESS", "10"))
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

# Audit trail (docs/security.md has what each key and login can and cannot do). Every
# entry's hash is keyed with AUDIT_CHAIN_KEY, which PostgreSQL never sees, so whoever can
# only write to the database cannot add or change an entry that verifies.
# The signer and the index builder append nothing and are not given it (console/processes.py).
AUDIT_CHAIN_KEY = os.environ.get("AUDIT_CHAIN_KEY", "")
if not AUDIT_CHAIN_KEY and os.environ.get("CONSOLE_PROCESS") not in {"signer", "indexer"}:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("AUDIT_CHAIN_KEY must be set when DEBUG is off.")
    AUDIT_CHAIN_KEY = hashlib.sha256(b"audit-chain:" + SECRET_KEY.encode()).hexdigest()
# Checkpoints are signed with AUDIT_CHECKPOINT_KEY by the signer process only
# (manage.py audit_checkpoint_signer, which refuses to start without it): the web and the
# workers are not given it, so a compromised worker cannot re-sign a rewritten chain. Where
# it is absent, signatures are not checked and the checkpoint file is the anchor.
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
if not AUDIT_CHECKPOINT_KEY and TESTING:
    AUDIT_CHECKPOINT_KEY = hashlib.sha256(b"audit-checkpoint:" + SECRET_KEY.encode()).hexdigest()
AUDIT_CHECKPOINT_DIR = Path(
    os.environ.get("AUDIT_CHECKPOINT_DIR", BASE_DIR / ".run" / "audit-checkpoints")
)
AUDIT_CHECKPOINT_INTERVAL_MINUTES = int(os.environ.get("AUDIT_CHECKPOINT_INTERVAL_MINUTES", "5"))
# Keys (case-insensitive substrings) whose values are masked before an entry is stored.
AUDIT_REDACTED_FIELDS = env_list(
    "AUDIT_REDACTED_FIELDS",
    "password,secret,token,api_key,apikey,authorization,cookie,session,signature",
)
# Failed sign-ins counted in Redis are written to the trail once their window is over.
CELERY_BEAT_SCHEDULE["signin-failures-record"] = {
    "task": "console.audit.tasks.signin_failures_record_task",
    "schedule": 60.0,
}
# Approved change requests whose apply task was lost are enqueued again (idempotent).
CELERY_BEAT_SCHEDULE["change-requests-sweep"] = {
    "task": "console.changes.tasks.change_requests_sweep_task",
    "schedule": 60.0,
}
# An approval counts for this long: a change approved and then left waiting (a lost task,
# a far-off schedule) goes back to review rather than landing on a stale decision.
APPROVAL_MAX_AGE_DAYS = int(os.environ.get("APPROVAL_MAX_AGE_DAYS", "7"))
# Approved changes whose "apply at" has come are handed to the apply task.
CELERY_BEAT_SCHEDULE["change-requests-apply-due"] = {
    "task": "console.changes.tasks.change_requests_apply_due_task",
    "schedule": 30.0,
}
# The workspace's time zone: scheduled changes are asked for and shown in it (one
# workspace for now; the console itself stores and logs UTC).
CONSOLE_TIME_ZONE = os.environ.get("CONSOLE_TIME_ZONE", "UTC")
# The workspace's outgoing webhook for change request events (docs/deploy.md): set by
# whoever deploys, never by a console user. Each delivery is signed with the secret
# (HMAC-SHA256 in X-Console-Signature), so the URL is refused without one.
NOTIFY_WEBHOOK_URL = os.environ.get("NOTIFY_WEBHOOK_URL", "")
NOTIFY_WEBHOOK_SECRET = os.environ.get("NOTIFY_WEBHOOK_SECRET", "")
if NOTIFY_WEBHOOK_URL and len(NOTIFY_WEBHOOK_SECRET) < 16:
    raise ImproperlyConfigured(
        "NOTIFY_WEBHOOK_URL needs a NOTIFY_WEBHOOK_SECRET of 16+ characters."
    )
# Webhook deliveries whose task was lost are enqueued again (idempotent).
CELERY_BEAT_SCHEDULE["webhook-deliveries-sweep"] = {
    "task": "console.notifications.tasks.webhook_deliveries_sweep_task",
    "schedule": 300.0,
}
# Notices edits made directly in Braze (templates, blocks, preference centers) and keeps
# every version; Braze's API offers no history of its own.
CONTENT_SYNC_INTERVAL_MINUTES = int(os.environ.get("CONTENT_SYNC_INTERVAL_MINUTES", "15"))

# Braze. Every workspace the console serves (console/workspaces.py); the first is the default.
# Keys and SCIM tokens are secrets: they are never logged or rendered.
BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(os.environ)


def beat_per_workspace(name: str, task: str, schedule: float) -> None:
    """One beat entry per workspace, each message naming its workspace by key (never a
    secret). Each runs with its own client and limits, so one workspace's wait (a spent
    limit group, an outage) never delays another's, and one failing stops no other."""
    for workspace in BRAZE_WORKSPACES_CONFIGURED:
        CELERY_BEAT_SCHEDULE[f"{name}:{workspace.key}"] = {
            "task": task,
            "schedule": schedule,
            "args": (workspace.key,),
        }


beat_per_workspace(
    "content-sync", "templates_app.tasks.content_sync_task", CONTENT_SYNC_INTERVAL_MINUTES * 60.0
)
# The default workspace's connection under the names the single-workspace code reads.
BRAZE_REST_ENDPOINT = BRAZE_WORKSPACES_CONFIGURED[0].rest_endpoint
BRAZE_API_KEY = BRAZE_WORKSPACES_CONFIGURED[0].api_key
BRAZE_SCIM_TOKEN = BRAZE_WORKSPACES_CONFIGURED[0].scim_token
BRAZE_CONNECT_TIMEOUT = float(os.environ.get("BRAZE_CONNECT_TIMEOUT", "5"))
BRAZE_READ_TIMEOUT = float(os.environ.get("BRAZE_READ_TIMEOUT", "30"))
# SCIM's "Service Origin", sent as X-Request-Origin with the SCIM token. Braze refuses SCIM
# calls without it, so the console makes none while it is empty.
BRAZE_SCIM_ORIGIN = BRAZE_WORKSPACES_CONFIGURED[0].scim_origin
# Which workspace permission names dashboard-user forms offer and accept: "granular" (Braze's
# names since its granular permissions migration) or "legacy" (the older names, which Braze
# stops accepting in December 2026). Legacy names an account already holds are kept either way.
BRAZE_SCIM_PERMISSIONS = os.environ.get("BRAZE_SCIM_PERMISSIONS", "granular").strip().lower()
if BRAZE_SCIM_PERMISSIONS not in {"granular", "legacy"}:
    raise ImproperlyConfigured("BRAZE_SCIM_PERMISSIONS must be 'granular' or 'legacy'.")
# The access review's share of the company's SCIM calls a day (UTC): a fifth of the 5,000
# of "API rate limits" (_docs/_api/api_limits.md), leaving the rest to account changes.
# Its look-ups (one call per email) run on a worker; a run kept this long for its owner.
ACCESS_REVIEW_SCIM_CALLS_PER_DAY = int(os.environ.get("ACCESS_REVIEW_SCIM_CALLS_PER_DAY", "1000"))
ACCESS_REVIEW_KEEP_SECONDS = int(os.environ.get("ACCESS_REVIEW_KEEP_SECONDS", str(24 * 3600)))


# Requests per window (seconds) per Braze limit group: Braze's documented defaults.
# Reference: "API Rate Limits", "Rate limits by request type" (braze-docs
# _docs/_api/api_limits.md). Limits are per workspace (SCIM: per company) and Braze raises
# them on request, so the limiter uses the limit Braze announces in X-RateLimit-Limit once it
# has seen one (console/braze/limiter/README.md, "Learned limits"); these figures hold until then.
BRAZE_DEFAULT_LIMIT_GROUPS: dict[str, tuple[int, float]] = {
    "catalogs_sync": (50, 60.0),
    "catalog_items_sync": (50, 60.0),
    "catalog_items_async": (16_000, 60.0),
    "catalog_fields_selections": (50, 60.0),
    "preference_center_read": (1000, 60.0),
    "preference_center_write": (10, 60.0),
    "scim": (5000, 86400.0),
    # "Export user profile by identifier": 250/min for workspaces onboarded since 22 August
    # 2024; a workspace Braze gave 40/s (or an older one, 2,500/min) overrides it.
    "users_export_ids": (250, 60.0),
    # Translations of templates and Content Blocks (early access): 250,000 per minute.
    "translations": (250_000, 60.0),
    "default": (250_000, 3600.0),
}


def braze_limit_overrides(overrides: str) -> dict[str, tuple[int, float]]:
    """Groups whose limit is set by hand: BRAZE_RATE_LIMIT_OVERRIDES="catalogs_sync=40/60,...".

    An override wins over both the default and what Braze announces (e.g. to leave part of a
    raised limit to another integration, or for benchmarks).
    """
    groups: dict[str, tuple[int, float]] = {}
    for spec in filter(None, (s.strip() for s in overrides.split(","))):
        name, _, value = spec.partition("=")
        if name not in BRAZE_DEFAULT_LIMIT_GROUPS or not value:
            raise ImproperlyConfigured(f"BRAZE_RATE_LIMIT_OVERRIDES: bad entry {spec!r}")
        count, _, window = value.partition("/")
        default_window = BRAZE_DEFAULT_LIMIT_GROUPS[name][1]
        groups[name] = (int(count), float(window) if window else default_window)
    return groups


def braze_limit_groups(overrides: str) -> dict[str, tuple[int, float]]:
    """The configured limit of every group: the defaults with the overrides applied."""
    return {**BRAZE_DEFAULT_LIMIT_GROUPS, **braze_limit_overrides(overrides)}


# The global Braze rate limiter's one settings object (console/braze/limiter/README.md).
BRAZE_RATE_LIMITS = {
    "groups": braze_limit_groups(os.environ.get("BRAZE_RATE_LIMIT_OVERRIDES", "")),
    # Groups set by hand: their figure is used even when Braze announces another.
    "overrides": sorted(braze_limit_overrides(os.environ.get("BRAZE_RATE_LIMIT_OVERRIDES", ""))),
    # Limits are per workspace: every console sharing a workspace must use the same name.
    # The name keying the default workspace's limiter: its workspace name, unless set apart
    # (tests and benchmarks give each run its own); other workspaces' use their names.
    "workspace": os.environ.get("BRAZE_RATE_LIMIT_WORKSPACE", "").strip()
    or BRAZE_WORKSPACES_CONFIGURED[0].key,
    # Background work (syncs, bulk jobs, read-backs) never takes more than this share of a
    # group, at any time: Braze's limits are shared with every other integration of the
    # workspace, and many of them never retry a 429. The rest is left to people and to them.
    "background_share": float(os.environ.get("BRAZE_RATE_LIMIT_BACKGROUND_SHARE", "0.7")),
    # When Braze's headers show requests that are not ours, background work also leaves their
    # observed rate plus this share of the limit free.
    "yield_margin": float(os.environ.get("BRAZE_RATE_LIMIT_YIELD_MARGIN", "0.05")),
    # Benchmarks only: the sandbox's clock runs S times faster, so windows last W/S.
    "clock_scale": float(os.environ.get("BRAZE_RATE_LIMIT_CLOCK_SCALE", "1")),
    # Real seconds added to each window: requests sent W apart can arrive closer together.
    "margin_seconds": float(os.environ.get("BRAZE_RATE_LIMIT_MARGIN_SECONDS", "0.5")),
    # After a Redis restart one probe request learns Braze's window; if its answer does not
    # come within this many seconds (its worker died), another caller probes.
    "probe_timeout_seconds": float(os.environ.get("BRAZE_RATE_LIMIT_PROBE_TIMEOUT", "5")),
    # Before that probe, callers wait this long while each process puts back its own recent
    # sends (it remembers them), so only those of processes that died are missing.
    "gather_seconds": float(os.environ.get("BRAZE_RATE_LIMIT_GATHER_SECONDS", "0.5")),
    # Align to Braze's fixed windows once its reset headers show them ("0" keeps the
    # sliding log only, e.g. if Braze ever changes how it counts).
    "align_fixed_windows": os.environ.get("BRAZE_RATE_LIMIT_ALIGN", "1") == "1",
    # Off the grid a stream of sends may run this share of the limit ahead of an even
    # schedule, and no more: a burst would be copied by the log into every later window.
    "burst_share": float(os.environ.get("BRAZE_RATE_LIMIT_BURST_SHARE", "0.05")),
}
# How long a call may wait for a free slot before failing with BrazeRateLimited.
BRAZE_MAX_WAIT = {
    "interactive": float(os.environ.get("BRAZE_MAX_WAIT_INTERACTIVE", "2")),
    "background": float(os.environ.get("BRAZE_MAX_WAIT_BACKGROUND", "2")),
}
BRAZE_RETRY: dict[str, Any] = {
    "attempts": int(os.environ.get("BRAZE_RETRY_ATTEMPTS", "3")),
    "backoff_base": float(os.environ.get("BRAZE_RETRY_BACKOFF_BASE", "0.5")),
    "backoff_cap": float(os.environ.get("BRAZE_RETRY_BACKOFF_CAP", "8")),
}
BRAZE_PERMISSION_CACHE_SECONDS = int(os.environ.get("BRAZE_PERMISSION_CACHE_SECONDS", "600"))
# /healthz runs its checks (a Celery ping, a request to Braze) at most once per this many
# seconds in each process, however often it is asked.
# Metrics (console/metrics): /metrics answers only a bearer holding METRICS_TOKEN (404 while
# it is unset); every process records its counters in REDIS_URL under METRICS_KEY_PREFIX.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_RECORD = env_bool("METRICS_RECORD", True)
METRICS_KEY_PREFIX = os.environ.get("METRICS_KEY_PREFIX", "console:metrics")
HEALTHZ_CACHE_SECONDS = float(os.environ.get("HEALTHZ_CACHE_SECONDS", "10"))

# Catalog mirror. Fields per catalog: 500 on the create-catalog page today, 30 in older docs.
CATALOG_MAX_FIELDS = int(os.environ.get("CATALOG_MAX_FIELDS", "500"))
# Catalog field changes are asynchronous in Braze: how long the applier reads the catalog back
# waiting for one to show before it reports "accepted, not yet applied" (a retry checks again).
CATALOG_SCHEMA_APPLY_WAIT_SECONDS = float(os.environ.get("CATALOG_SCHEMA_APPLY_WAIT_SECONDS", "60"))
# The create-catalog form posts two inputs per field row (at most 1,000 rows, so a catalog over
# the limit gets Braze's message rather than a bare 400); Django's default allows 1,000 inputs.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2 * 1000 + 100
CATALOG_SYNC_INTERVAL_MINUTES = int(os.environ.get("CATALOG_SYNC_INTERVAL_MINUTES", "60"))
# A pass whose worker has not reported for this long is resumed from its checkpoint.
CATALOG_SYNC_STALL_MINUTES = int(os.environ.get("CATALOG_SYNC_STALL_MINUTES", "5"))
# A sync waits in the worker for its next slot (one 50/min window) rather than re-queueing.
CATALOG_SYNC_MAX_WAIT = float(os.environ.get("CATALOG_SYNC_MAX_WAIT", "65"))
CATALOG_SYNC_PAGES_PER_TASK = int(os.environ.get("CATALOG_SYNC_PAGES_PER_TASK", "500"))
# "Refresh from Braze" queues one listing at a time; a lost task frees the button after this.
CATALOG_LIST_REFRESH_PENDING_SECONDS = int(
    os.environ.get("CATALOG_LIST_REFRESH_PENDING_SECONDS", "300")
)
# Each run lists a workspace's catalogs once: 1 of its 50/min catalog requests every 5 minutes.
beat_per_workspace("catalog-sync", "catalogs.tasks.catalog_sync_schedule_task", 300.0)
# Bulk item jobs (catalog_bulk). Uploads are streamed to MEDIA_ROOT/bulk.
BULK_MAX_UPLOAD_BYTES = int(os.environ.get("BULK_MAX_UPLOAD_BYTES", str(100 * 1024 * 1024)))
# A parse not finished after this long is queued again (its message or worker was lost), and
# refused, its file removed, after the second.
BULK_PARSE_STALE_SECONDS = int(os.environ.get("BULK_PARSE_STALE_SECONDS", "600"))
BULK_PARSE_GIVE_UP_SECONDS = int(os.environ.get("BULK_PARSE_GIVE_UP_SECONDS", str(6 * 3600)))
# What an error row keeps, so errors.csv grows with the file, never with its square: the
# unknown columns named per row (and kept beside the catalog's fields, and as errors.csv
# columns), and how many error rows keep their values at all (the rest: id and reasons).
BULK_UNKNOWN_COLUMNS_NAMED = int(os.environ.get("BULK_UNKNOWN_COLUMNS_NAMED", "10"))
BULK_ERROR_ROWS_WITH_VALUES = int(os.environ.get("BULK_ERROR_ROWS_WITH_VALUES", "10000"))
# "Send failed batches again" this long after they failed (or after a newer job started on the
# catalog) first diffs their items against the mirror; changed items need a fresh approval.
# 0: every retry is checked.
BULK_RETRY_REDIFF_AFTER_SECONDS = int(os.environ.get("BULK_RETRY_REDIFF_AFTER_SECONDS", "3600"))
# Sender tasks kept in flight per workspace, across all workers (about request rate * p99
# latency + 1); each workspace's senders use its own limits.
BULK_SENDERS = int(os.environ.get("BULK_SENDERS", "2"))
# Bulk sends are background work: they take at most the background share of the
# asynchronous item group (the rest is other integrations'), unless an approver allowed a job
# the whole limit.
BULK_LIMITER_LANE = os.environ.get("BULK_LIMITER_LANE", "background")
BULK_MAX_INLINE_WAIT = float(os.environ.get("BULK_MAX_INLINE_WAIT", "2"))
BULK_MAX_ATTEMPTS = int(os.environ.get("BULK_MAX_ATTEMPTS", "6"))
BULK_BACKOFF_BASE = float(os.environ.get("BULK_BACKOFF_BASE", "1"))
BULK_BACKOFF_CAP = float(os.environ.get("BULK_BACKOFF_CAP", "60"))
# A sender slot not renewed for this long is presumed dead and started again by the sweeper.
BULK_SENDER_TTL = float(os.environ.get("BULK_SENDER_TTL", "15"))
# A sender task sends batches for this long, then hands its slot to a new task.
BULK_SENDER_STEP_SECONDS = float(os.environ.get("BULK_SENDER_STEP_SECONDS", "5"))
# A sender claims, in one round trip, the batches its share of the asynchronous item group
# lets it send in this long (one at the reference limits, several at Braze's current ones),
# at most BULK_CLAIM_BATCHES.
BULK_CLAIM_SECONDS = float(os.environ.get("BULK_CLAIM_SECONDS", "0.25"))
BULK_CLAIM_BATCHES = int(os.environ.get("BULK_CLAIM_BATCHES", "16"))
# Each further batch of a claim holds its lease this much longer than the one before (a
# killed sender's last batch is found in one lease and BULK_CLAIM_BATCHES - 1 steps).
BULK_CLAIM_LEASE_STEP = float(os.environ.get("BULK_CLAIM_LEASE_STEP", "0.5"))
BULK_SWEEP_SECONDS = float(os.environ.get("BULK_SWEEP_SECONDS", "5"))
# After a job, a random sample of its accepted items is read back and compared with what was
# sent. Braze answers 202 before applying and advises up to 5 minutes between dependent calls,
# so the read-back waits that long (it must exceed the async apply time).
BULK_READBACK_SAMPLE = int(os.environ.get("BULK_READBACK_SAMPLE", "50"))
BULK_READBACK_DELAY_SECONDS = float(os.environ.get("BULK_READBACK_DELAY_SECONDS", "300"))
# A read-back task reads for this long (single-item reads share 50/min), then hands over.
BULK_READBACK_STEP_SECONDS = float(os.environ.get("BULK_READBACK_STEP_SECONDS", "20"))
# Per workspace: its senders, read-backs and parses, started with its own client.
beat_per_workspace("catalog-bulk-sweep", "catalogs.bulk.tasks.bulk_sweep_task", BULK_SWEEP_SECONDS)
# Retention (catalog_bulk/retention.py), in days (0: keep): uploaded files, and the rows,
# batches and read-backs of ended jobs. The job itself (its summary) and its audit entries stay.
BULK_RETENTION_DAYS = int(os.environ.get("BULK_RETENTION_DAYS", "30"))
BULK_JOB_RETENTION_DAYS = int(os.environ.get("BULK_JOB_RETENTION_DAYS", "365"))
CELERY_BEAT_SCHEDULE["catalog-bulk-retention"] = {
    "task": "catalogs.bulk.tasks.bulk_retention_task",
    "schedule": 3600.0,
}

MAILERS = {
    "default": {
        "BACKEND": os.environ.get(
            "EMAIL_BACKEND",
            "django.core.mail.backends.console.EmailBackend"
            if DEBUG
            else "django.core.mail.backends.smtp.EmailBackend",
        ),
        "OPTIONS": {
            "host": os.environ.get("EMAIL_HOST", "localhost"),
            "port": int(os.environ.get("EMAIL_PORT", "25")),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", False),
        }
        if not DEBUG and "EMAIL_BACKEND" not in os.environ
        else {},
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "braze-console@localhost")

# Logs (console/logs.py): one JSON object a line in production, readable lines in
# development; each carries the request id (also in the lines of the tasks a request started),
# the actor and the workspace, and never a secret.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "console" if DEBUG else "json").strip().lower()
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
try:
    LOGGING = console_logs.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
console_logs.structlog_configure()
INSTALLED_APPS.append("django_structlog")
# Inside authentication, so the request's user is known; outside everything that answers.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_structlog.middlewares.RequestMiddleware",
)
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# The address is bound by console/logs.py as console/net.py derives it (TRUSTED_PROXY_COUNT).
DJANGO_STRUCTLOG_IP_LOGGING_ENABLED = False
# request_started adds nothing request_finished does not say.
DJANGO_STRUCTLOG_STATUS_START_LOG_LEVEL = logging.DEBUG
# Error reporting (console/error_reporting.py): off unless SENTRY_DSN is set (any service that
# speaks Sentry's protocol); events carry no secret and no personal data beyond the user's id.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT", "")
SENTRY_TRACES_SAMPLE_RATE = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0"))
error_reporting_init(
    dsn=SENTRY_DSN,
    environment=SENTRY_ENVIRONMENT,
    traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
)
