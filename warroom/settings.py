"""Warroom settings: one module, every knob an environment variable.

Safe defaults, loud errors: a value that cannot be understood raises
ImproperlyConfigured at start-up instead of being guessed at. See README.md
("Configuration") for the list.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from warroom import embedded

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# Importing settings starts nothing and writes nothing: the entry points (`make run`'s launcher,
# manage.py, the test and bench set-ups) call ``warroom.embedded.ensure_environment()`` first,
# which starts the embedded PostgreSQL and Redis when no URLs are given and, on a developer's
# machine, keeps a secret key under .run/.
EMBEDDED_DEFAULT = os.environ.get("WARROOM_EMBEDDED_ACTIVE") == "1"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Set it to 50+ random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))'); `make run` and manage.py "
        "make one for a developer's machine."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Behind TLS (the default outside DEBUG): secure cookies, HSTS, redirect to https.
HTTPS = env_bool("WARROOM_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("WARROOM_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
# Behind a reverse proxy: trust its X-Forwarded-Proto, and take the client's address from the
# last X-Forwarded-For entry (the one the proxy added) for login lockouts.
BEHIND_PROXY = env_bool("WARROOM_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "guardian",
    "template_partials",
    "axes",
    "csp",
    "checklists",
    "deployments",
    "approvals",
    "rollouts",
    "comms",
    "incidents",
    "reports",
    # The project itself, on top of the apps: the commands that compose them (the demo seed,
    # the health check). See "Layers" in the README.
    "warroom",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads a parameter, the session or the database.
    "warroom.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "warroom.middleware.UserTimezoneMiddleware",
    # Domain refusals (InvalidChange, PermissionDenied, DoesNotExist) → 4xx, in one place.
    "warroom.middleware.DomainErrorsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "warroom.urls"
ASGI_APPLICATION = "warroom.asgi.application"
WSGI_APPLICATION = "warroom.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "deployments.context_processors.rights",
            ],
        },
    }
]

# --- data stores -------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")
if not DATABASE_URL or not REDIS_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL and REDIS_URL must be set; `make run` and manage.py start the embedded PostgreSQL "
        "and Redis when they are not."
    )
if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// URL (Warroom needs PostgreSQL)")
if not REDIS_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("REDIS_URL must be a redis:// or rediss:// URL")

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("WARROOM_DB_CONN_MAX_AGE", 0))}
# A pool of open connections per process (psycopg's pool, as Django supports it): under ASGI
# every request runs on a thread of its own, so without one every request opens a new
# PostgreSQL connection (a new server process, about 4 ms here) and closes it again. A
# request borrows a connection and gives it back when it ends; at most WARROOM_DB_POOL_SIZE
# per process, and a request that cannot get one within 10 s fails with a clear error.
# Off when WARROOM_DB_POOL=0, or when persistent connections (WARROOM_DB_CONN_MAX_AGE) are used.
if env_bool("WARROOM_DB_POOL", True) and not DATABASES["default"]["CONN_MAX_AGE"]:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("WARROOM_DB_POOL_SIZE", 20, minimum=1),
        "timeout": 10,
    }
    # Each connection is tried (an empty query) as it is handed out: after PostgreSQL
    # restarts, a dead one is replaced instead of failing the request that drew it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The role web, worker and beat connect as (not a superuser, owns no table); `setup_db_roles`
# grants it its rights. Migrations run as the tables' owner. See README ("Database roles").
DATABASE_APP_ROLE = os.environ.get("WARROOM_DB_APP_ROLE", "warroom_app")
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("WARROOM_TEST_DATABASE", "test_warroom")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

CHANNEL_LAYERS = {
    "default": {
        # Redis pub/sub: a push to a deployment's group is published once, and each web process
        # receives it once and hands it to every socket it holds; the list-based layer would
        # copy it into Redis once per socket (500 screens: 500 copies). Pub/sub keeps nothing
        # for a process that is not listening: the screens' sequence numbers and heartbeats
        # (deployments/live.py) make them re-fetch what they missed.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # A connection Redis closed (a restart) is made anew and the command tried again,
            # a few times with a short backoff, rather than failing the socket that used it.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": None,
                    "retry": AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 4),
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "prefix": os.environ.get("WARROOM_CHANNEL_PREFIX", "warroom"),
        },
    }
}

# --- Celery --------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("WARROOM_CELERY_QUEUE", "warroom")
CELERY_TIMEZONE = "UTC"

# --- auth ----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account or address before any password is checked.
    "warroom.auth.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous object permissions, ever
GUARDIAN_RAISE_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Wrong passwords (at login, and when a sign-off is confirmed with one) lock out the account
# and, separately, the address they came from (django-axes, attempts kept in the database).
AXES_FAILURE_LIMIT = env_int("WARROOM_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("WARROOM_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not wipe the count: else logging in to one's own account between guesses
# would reset the address's (and the guessed account's) failures.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "warroom.auth.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# --- the debug page and error reports ---------------------------------------------------
# Hides URL/DATABASE/REDIS/DSN settings (and any URL with credentials) besides Django's list.
DEFAULT_EXCEPTION_REPORTER_FILTER = "warroom.debug.WarroomExceptionReporterFilter"

# --- Content-Security-Policy (django-csp) ------------------------------------------------
# Scripts and styles only from Warroom's own static files: no inline script, no inline style,
# no eval (htmx's hx-on is not used; its indicator style is in warroom.css).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- i18n / time ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"  # stored and processed in UTC; shown in each viewer's zone

# --- static --------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("WARROOM_STATIC_ROOT", BASE_DIR / ".run" / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("WARROOM_MANIFEST_STATIC", not DEBUG and HTTPS)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
MEDIA_ROOT = Path(os.environ.get("WARROOM_MEDIA_ROOT", BASE_DIR / ".run" / "media"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

# --- Warroom -------------------------------------------------------------------------
RUNBOOK_MAX_BYTES = env_int("WARROOM_RUNBOOK_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
# Seconds between page polls when no websocket is available.
WARROOM_POLL_SECONDS = env_int("WARROOM_POLL_SECONDS", 5, minimum=1)
# Each war-room socket gets a heartbeat through the channel layer this often; a screen
# that hears nothing for 2.5 beats says it is not live and fetches the board itself.
WARROOM_LIVE_BEAT_SECONDS = env_int("WARROOM_LIVE_BEAT_SECONDS", 10, minimum=1)
# The demo's pretend production (/demo/metrics, /demo/health, /demo/router; rollouts.demo):
# routed only when on. `make run` turns it on; production and compose leave it off.
WARROOM_DEMO = env_bool("WARROOM_DEMO", False)

# --- reports: signed PDF, Markdown and JSON exports ------------------------------------
# The signing identity: a PEM key + certificate pair, or one PKCS#12 file. With neither,
# a self-signed pair is generated on first use under REPORT_SIGNING_DIR (and logged).
REPORT_SIGNING_KEY = os.environ.get("WARROOM_SIGNING_KEY", "")
REPORT_SIGNING_CERT = os.environ.get("WARROOM_SIGNING_CERT", "")
REPORT_SIGNING_KEY_PASSWORD = os.environ.get("WARROOM_SIGNING_KEY_PASSWORD", "")
REPORT_SIGNING_P12 = os.environ.get("WARROOM_SIGNING_P12", "")
REPORT_SIGNING_P12_PASSWORD = os.environ.get("WARROOM_SIGNING_P12_PASSWORD", "")
REPORT_SIGNING_DIR = Path(os.environ.get("WARROOM_SIGNING_DIR", embedded.RUN_DIR / "signing"))
if bool(REPORT_SIGNING_KEY) != bool(REPORT_SIGNING_CERT):
    raise ImproperlyConfigured("Set both WARROOM_SIGNING_KEY and WARROOM_SIGNING_CERT, or neither")
if REPORT_SIGNING_P12 and REPORT_SIGNING_KEY:
    raise ImproperlyConfigured("Set WARROOM_SIGNING_P12 or WARROOM_SIGNING_KEY/_CERT, not both")
for _name, _path in [
    ("WARROOM_SIGNING_KEY", REPORT_SIGNING_KEY),
    ("WARROOM_SIGNING_CERT", REPORT_SIGNING_CERT),
    ("WARROOM_SIGNING_P12", REPORT_SIGNING_P12),
]:
    if _path and not Path(_path).is_file():
        raise ImproperlyConfigured(f"{_name}={_path!r}: no such file")
# An RFC 3161 time-stamping authority; when set, every signature carries its timestamp.
REPORT_TSA_URL = os.environ.get("WARROOM_TSA_URL", "").strip()
if REPORT_TSA_URL and not REPORT_TSA_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"WARROOM_TSA_URL={REPORT_TSA_URL!r} must be an http:// or https:// URL")
REPORT_PAPER = os.environ.get("WARROOM_REPORT_PAPER", "a4").strip().lower()
if REPORT_PAPER not in {"a4", "letter"}:
    raise ImproperlyConfigured(f"WARROOM_REPORT_PAPER={REPORT_PAPER!r}: use a4 or letter")
REPORT_VERIFY_MAX_BYTES = env_int("WARROOM_REPORT_VERIFY_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("WARROOM_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},  # hundreds of progress lines per report at INFO
        "fontTools": {"level": "WARNING"},
    },
}

# --- automated steps (rollouts) ----------------------------------------------------------
WARROOM_BACKUP_DIR = Path(os.environ.get("WARROOM_BACKUP_DIR", embedded.RUN_DIR / "backups"))
# PostgreSQL client tools; empty: the ones bundled with pgserver (PostgreSQL 16), else PATH.
WARROOM_PG_BIN_DIR = os.environ.get("WARROOM_PG_BIN_DIR", "")
WARROOM_RUN_HEARTBEAT_SECONDS = env_int("WARROOM_RUN_HEARTBEAT_SECONDS", 5, minimum=1)
WARROOM_RUN_LOST_AFTER_SECONDS = env_int("WARROOM_RUN_LOST_AFTER_SECONDS", 20, minimum=3)
WARROOM_RUN_KILL_GRACE_SECONDS = env_int("WARROOM_RUN_KILL_GRACE_SECONDS", 10, minimum=1)
if WARROOM_RUN_LOST_AFTER_SECONDS <= 2 * WARROOM_RUN_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("WARROOM_RUN_LOST_AFTER_SECONDS must be more than twice WARROOM_RUN_HEARTBEAT_SECONDS")

# How often the rollout controller looks at running rollouts (sampling itself follows each plan).
WARROOM_ROLLOUT_TICK_SECONDS = env_float("WARROOM_ROLLOUT_TICK_SECONDS", 0.5, minimum=0.1)

# --- communications (comms) and incidents -----------------------------------------------
# E-mail goes through Django's SMTP backend, configured here; the password is only ever
# handed to smtplib, never logged or shown.
EMAIL_BACKEND = os.environ.get("WARROOM_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("WARROOM_SMTP_HOST", "localhost")
EMAIL_PORT = env_int("WARROOM_SMTP_PORT", 25, minimum=1)
if EMAIL_PORT > 65535:
    raise ImproperlyConfigured(f"WARROOM_SMTP_PORT={EMAIL_PORT} is not a TCP port")
EMAIL_HOST_USER = os.environ.get("WARROOM_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("WARROOM_SMTP_PASSWORD", "")
EMAIL_USE_TLS = env_bool("WARROOM_SMTP_TLS", False)
EMAIL_TIMEOUT = env_int("WARROOM_SMTP_TIMEOUT_SECONDS", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("WARROOM_FROM_EMAIL", "Warroom <warroom@localhost>")
# Absolute links in messages (status page, war room) need to know where Warroom lives.
WARROOM_BASE_URL = os.environ.get("WARROOM_BASE_URL", f"http://127.0.0.1:{os.environ.get('WARROOM_PORT', '8000')}").rstrip("/")
if not WARROOM_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"WARROOM_BASE_URL={WARROOM_BASE_URL!r} must be an http:// or https:// URL")
WARROOM_COMMS_TICK_SECONDS = env_float("WARROOM_COMMS_TICK_SECONDS", 15, minimum=0.2)
WARROOM_COMMS_MAX_ATTEMPTS = env_int("WARROOM_COMMS_MAX_ATTEMPTS", 5, minimum=1)
WARROOM_COMMS_RETRY_BASE_SECONDS = env_float("WARROOM_COMMS_RETRY_BASE_SECONDS", 30, minimum=0.1)
WARROOM_ESCALATION_WAIT_SECONDS = env_int("WARROOM_ESCALATION_WAIT_SECONDS", 300, minimum=1)
WARROOM_ESCALATION_TICK_SECONDS = env_float("WARROOM_ESCALATION_TICK_SECONDS", 10, minimum=0.2)

CELERY_BEAT_SCHEDULE = {
    "tick-rollouts": {"task": "rollouts.tick_rollouts", "schedule": WARROOM_ROLLOUT_TICK_SECONDS},
    "reap-lost-runs": {"task": "rollouts.reap_lost_runs", "schedule": env_int("WARROOM_REAP_SECONDS", 5, minimum=1)},
    "mark-late-steps": {"task": "deployments.mark_late_steps", "schedule": env_int("WARROOM_LATE_CHECK_SECONDS", 30, minimum=5)},
    "send-due-messages": {"task": "comms.send_due", "schedule": WARROOM_COMMS_TICK_SECONDS},
    "escalate-incidents": {"task": "incidents.escalate_due", "schedule": WARROOM_ESCALATION_TICK_SECONDS},
    # Signed checkpoints of every event chain that grew (deployments.checkpoints).
    "checkpoint-chains": {
        "task": "deployments.checkpoint_chains",
        "schedule": env_int("WARROOM_CHECKPOINT_SECONDS", 300, minimum=5),
    },
}
