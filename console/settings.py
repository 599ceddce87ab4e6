"""One settings file, driven by the environment (see the README's configuration table).

Development defaults are safe only on a laptop: with DEBUG off, SECRET_KEY must be set
and HTTPS settings switch on unless HTTPS=0 is given explicitly (tests on plain HTTP).
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

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
    "templates_app",
    "users_admin",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Axes must come last so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
    # Who, from where: the audit service reads the request's IP and user agent from here.
    "console.audit.context.AuditRequestMiddleware",
]

if not (DEBUG or TESTING):
    # Production serves collected static files itself; runserver and the test
    # live server serve them from static/ directly.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

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
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures per username and address lock that pair out.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

if TESTING:
    # Hashing passwords slowly protects nothing in a throw-away test database.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
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
    "form-action": [CSP.SELF],
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
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "console",
    }
}

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

# Audit trail. Checkpoints are signed with a key PostgreSQL never sees, so whoever can
# rewrite the audit table still cannot forge the signed head it must match.
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
if not AUDIT_CHECKPOINT_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("AUDIT_CHECKPOINT_KEY must be set when DEBUG is off.")
    import hashlib

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
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "console.audit.tasks.audit_checkpoint_task",
    "schedule": AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60.0,
}
# Approved change requests whose apply task was lost are enqueued again (idempotent).
CELERY_BEAT_SCHEDULE["change-requests-sweep"] = {
    "task": "console.changes.tasks.change_requests_sweep_task",
    "schedule": 60.0,
}
# Notices edits made directly in Braze (templates, blocks, preference centers) and keeps
# every version; Braze's API offers no history of its own.
CONTENT_SYNC_INTERVAL_MINUTES = int(os.environ.get("CONTENT_SYNC_INTERVAL_MINUTES", "15"))
CELERY_BEAT_SCHEDULE["content-sync"] = {
    "task": "templates_app.tasks.content_sync_task",
    "schedule": CONTENT_SYNC_INTERVAL_MINUTES * 60.0,
}

# Braze. The key and SCIM token are secrets: they are never logged or rendered.
BRAZE_REST_ENDPOINT = os.environ.get("BRAZE_REST_ENDPOINT", "http://127.0.0.1:9400")
BRAZE_API_KEY = os.environ.get("BRAZE_API_KEY", "")
BRAZE_SCIM_TOKEN = os.environ.get("BRAZE_SCIM_TOKEN", "")
BRAZE_CONNECT_TIMEOUT = float(os.environ.get("BRAZE_CONNECT_TIMEOUT", "5"))
BRAZE_READ_TIMEOUT = float(os.environ.get("BRAZE_READ_TIMEOUT", "30"))
# SCIM's "Service Origin", sent as X-Request-Origin with the SCIM token.
BRAZE_SCIM_ORIGIN = os.environ.get("BRAZE_SCIM_ORIGIN", "")


# Requests per window (seconds) per Braze limit group: Braze's documented defaults.
# Reference: "API Rate Limits", "Rate limits by request type" (braze-docs
# _docs/_api/api_limits.md). Limits are per workspace (SCIM: per company) and Braze raises
# them on request, so the limiter uses the limit Braze announces in X-RateLimit-Limit once it
# has seen one (limiter.py, "Learned limits"); these figures hold until then.
BRAZE_DEFAULT_LIMIT_GROUPS: dict[str, tuple[int, float]] = {
    "catalogs_sync": (50, 60.0),
    "catalog_items_sync": (50, 60.0),
    "catalog_items_async": (16_000, 60.0),
    "catalog_fields_selections": (50, 60.0),
    "preference_center_read": (1000, 60.0),
    "preference_center_write": (10, 60.0),
    "scim": (5000, 86400.0),
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


# The global Braze rate limiter's one settings object (console/braze/limiter.py).
BRAZE_RATE_LIMITS = {
    "groups": braze_limit_groups(os.environ.get("BRAZE_RATE_LIMIT_OVERRIDES", "")),
    # Groups set by hand: their figure is used even when Braze announces another.
    "overrides": sorted(braze_limit_overrides(os.environ.get("BRAZE_RATE_LIMIT_OVERRIDES", ""))),
    # Limits are per workspace: every console sharing a workspace must use the same name.
    "workspace": os.environ.get("BRAZE_WORKSPACE", "default"),
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

# Catalog mirror. Fields per catalog: 30 in the older docs, 500 in newer ones.
CATALOG_MAX_FIELDS = int(os.environ.get("CATALOG_MAX_FIELDS", "30"))
CATALOG_SYNC_INTERVAL_MINUTES = int(os.environ.get("CATALOG_SYNC_INTERVAL_MINUTES", "60"))
# A pass whose worker has not reported for this long is resumed from its checkpoint.
CATALOG_SYNC_STALL_MINUTES = int(os.environ.get("CATALOG_SYNC_STALL_MINUTES", "5"))
# A sync waits in the worker for its next slot (one 50/min window) rather than re-queueing.
CATALOG_SYNC_MAX_WAIT = float(os.environ.get("CATALOG_SYNC_MAX_WAIT", "65"))
CATALOG_SYNC_PAGES_PER_TASK = int(os.environ.get("CATALOG_SYNC_PAGES_PER_TASK", "500"))
CELERY_BEAT_SCHEDULE["catalog-sync"] = {
    "task": "catalogs.tasks.catalog_sync_schedule_task",
    # Each run lists catalogs once: 1 of the 50/min catalog requests every 5 minutes.
    "schedule": 300.0,
}
# Bulk item jobs (catalogs/bulk). Uploads are streamed to MEDIA_ROOT/bulk.
BULK_MAX_UPLOAD_BYTES = int(os.environ.get("BULK_MAX_UPLOAD_BYTES", str(100 * 1024 * 1024)))
# Sender tasks kept in flight across all workers (about request rate * p99 latency + 1).
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
BULK_SWEEP_SECONDS = float(os.environ.get("BULK_SWEEP_SECONDS", "5"))
# After a job, a random sample of its accepted items is read back and compared with what was
# sent. Braze answers 202 before applying and advises up to 5 minutes between dependent calls,
# so the read-back waits that long (it must exceed the async apply time).
BULK_READBACK_SAMPLE = int(os.environ.get("BULK_READBACK_SAMPLE", "50"))
BULK_READBACK_DELAY_SECONDS = float(os.environ.get("BULK_READBACK_DELAY_SECONDS", "300"))
# A read-back task reads for this long (single-item reads share 50/min), then hands over.
BULK_READBACK_STEP_SECONDS = float(os.environ.get("BULK_READBACK_STEP_SECONDS", "20"))
CELERY_BEAT_SCHEDULE["catalog-bulk-sweep"] = {
    "task": "catalogs.bulk.tasks.bulk_sweep_task",
    "schedule": BULK_SWEEP_SECONDS,
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
