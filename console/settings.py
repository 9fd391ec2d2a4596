"""Coupler settings: one module, read from the environment.

Production unless told otherwise: ``DEBUG`` is off by default and the process
refuses to start without a real ``SECRET_KEY`` and ``ALLOWED_HOSTS``.
Development, the demo and the tests say so explicitly with
``DJANGO_SETTINGS_MODULE=console.settings_dev`` (DEBUG on, a development key,
loopback hosts). Without ``DATABASE_URL``/``REDIS_URL`` the defaults need no
server: SQLite and kombu's filesystem transport under ``var/``. Every variable
is listed in ``deploy/coupler.env.example`` and ``docs/deploy.md``.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COUPLER_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEV_SECRET_KEY_PREFIX = "dev-only-insecure-key-"


def is_weak_secret_key(key: str) -> bool:
    """The same test as Django's security.W009: short, repetitive or a known dev key."""
    return (not key or len(key) < 50 or len(set(key)) < 5
            or key.startswith((DEV_SECRET_KEY_PREFIX, "django-insecure")))


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = DEV_SECRET_KEY_PREFIX + "x" * 40
if not DEBUG and is_weak_secret_key(SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG is off "
        "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(50))'); "
        "development and the demo use DJANGO_SETTINGS_MODULE=console.settings_dev"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must name this server's host names (comma-separated) when DEBUG is off"
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "axes",
    "console.core",
    # The demo, its simulated hosts and the benchmarks (management commands only).
    "coupler_demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "console.ui.middleware.UserPreferenceMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "console.logging.RequestIdMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # django-axes first: a locked-out user or address is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
            ],
            "libraries": {"coupler": "console.ui.templatetags"},
            # Every template can translate and format values without a {% load %}.
            "builtins": ["django.templatetags.i18n", "console.ui.templatetags"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'coupler.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, workers, agents' API calls) share one file in the
    # demo: wait for the write lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    # The file holds password hashes and tokens: owner-only, created so (not chmod'ed later).
    sqlite_path = Path(DATABASES["default"]["NAME"])
    if str(sqlite_path) != ":memory:" and not str(sqlite_path).startswith("file:"):
        sqlite_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(sqlite_path, os.O_CREAT | os.O_RDWR, 0o600))
        if sqlite_path.stat().st_mode & 0o077:
            sqlite_path.chmod(0o600)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
# English and Simplified Chinese (locale/zh_Hans, complete: tests/ui/test_i18n.py).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# locale/faults: the host agent's fault texts (console/ui/faulttext.py writes its msgids).
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale" / "faults"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Development and the demo serve straight from the app folders (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Production hardening; `manage.py check --deploy` passes with DEBUG=0.
# SECURE_COOKIES=0 and SECURE_SSL_REDIRECT=0 only for a stack served over plain
# HTTP on loopback (`make prod`): browsers send secure cookies over HTTPS only.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
# Sessions read from the cache (Redis in production), written through to the
# database: a signed-in page costs no session query.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# X-Forwarded-Proto is trusted only behind a proxy that sets it (and strips the
# client's): anyone can send the header to a server reached directly.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Request bodies: Django refuses (400) bodies above this many bytes outside file uploads.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)

# Content-Security-Policy (django-csp): only our own scripts (htmx is vendored,
# Swagger UI comes from the sidecar package and its init script from its own
# URL); inline style attributes stay allowed for the bar charts' widths.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for
# one user name, or from one address, logins are refused (429) for
# AXES_COOLOFF_MINUTES. The API's own limits are the DRF throttles below.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "console.api.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "console.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.api.exceptions.exception_handler",
    # Per user (signed in) and per address (anonymous); a 429 names the wait.
    "DEFAULT_THROTTLE_CLASSES": [
        "console.api.throttling.AnonRateThrottle",
        "console.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "120/min"),
        "user": env_str("API_THROTTLE_USER", "6000/min"),
    },
}
COUPLER_API_THROTTLE = env_bool("API_THROTTLE", True)
# Personal API tokens (console/core/models/tokens.py): hashed at rest, valid for
# COUPLER_API_TOKEN_DAYS unless their creator asks for fewer or more days, up to
# COUPLER_API_TOKEN_MAX_DAYS.
COUPLER_API_TOKEN_DAYS = env_int("COUPLER_API_TOKEN_DAYS", 90)
COUPLER_API_TOKEN_MAX_DAYS = env_int("COUPLER_API_TOKEN_MAX_DAYS", 365)

SPECTACULAR_SETTINGS = {
    "TITLE": "Coupler API",
    "DESCRIPTION": "Tenants, quotas, hosts, GPUs and jobs of a multi-tenant GPU cluster.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema, like the docs page, is for signed-in users.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Serve Swagger UI from our own static files: users may be offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation's error answers (400/401/403/404/429), not only its success.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "console.api.schema.document_error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "console.core.choices.JobState",
        "HostStateEnum": "console.core.choices.HostState",
        "IncidentStateEnum": "console.core.choices.IncidentState",
        "ApiTokenStateEnum": "console.core.models.tokens.TokenState",
    },
}

# Celery. Without REDIS_URL the broker is kombu's filesystem transport, which
# needs no server: every process on this machine shares the folders below.
REDIS_URL = env_str("REDIS_URL", "")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 600}
else:
    # No broker server: the atomic filesystem transport shared with the agents.
    from coupler_common.transport import BROKER_URL, filesystem_broker_options

    CELERY_BROKER_URL = BROKER_URL
    CELERY_RESULT_BACKEND = None
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(CELERY_BROKER_DIR)
if REDIS_URL:
    # One store for every process: API throttles and the broker's replay guard.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL, "KEY_PREFIX": "coupler"}}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # settings.LOGGING (JSON lines) for workers too
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a crashed worker's task is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "workflow"
CELERY_TASK_ROUTES = {
    "console.core.tasks.scheduling.*": {"queue": "scheduler"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
COUPLER_SCHEDULE_INTERVAL_S = env_int("COUPLER_SCHEDULE_INTERVAL_S", 10)
COUPLER_RECONCILE_INTERVAL_S = env_int("COUPLER_RECONCILE_INTERVAL_S", 30)
COUPLER_HEARTBEAT_TIMEOUT_S = env_int("COUPLER_HEARTBEAT_TIMEOUT_S", 60)
# A failed start is retried after COUPLER_RETRY_BACKOFF_S * 2^(attempt-1)
# seconds, up to COUPLER_PROVISION_MAX_ATTEMPTS attempts, then the job fails.
COUPLER_PROVISION_MAX_ATTEMPTS = env_int("COUPLER_PROVISION_MAX_ATTEMPTS", 3)
COUPLER_RETRY_BACKOFF_S = env_int("COUPLER_RETRY_BACKOFF_S", 5)
# The reconciler re-sends a workflow step that has not moved for this long.
COUPLER_STUCK_STEP_S = env_int("COUPLER_STUCK_STEP_S", 60)
# A RUNNING job is requeued as "domain vanished" only on an agent report
# received this long after it started (the report's list may predate it).
COUPLER_REPORT_GRACE_S = env_int("COUPLER_REPORT_GRACE_S", 15)

# /metrics: the bearer token Prometheus sends, or staff signed in. Without a
# token only staff can read it; COUPLER_METRICS_PUBLIC=1 opens it (a private
# scrape network) and is the only way to make it anonymous.
COUPLER_METRICS_TOKEN = env_str("COUPLER_METRICS_TOKEN", "")
COUPLER_METRICS_PUBLIC = env_bool("COUPLER_METRICS_PUBLIC", False)

# Per-tenant abuse limits on job submission (API and console): at most this many
# jobs waiting (QUEUED) per tenant, and this many submits per tenant per minute.
COUPLER_TENANT_MAX_QUEUED = env_int("COUPLER_TENANT_MAX_QUEUED", 200)
COUPLER_TENANT_SUBMITS_PER_MIN = env_int("COUPLER_TENANT_SUBMITS_PER_MIN", 60)

# Broker messages between console and agents are signed (hostagent/protocol/signing.py):
# a message older than this is refused, and one seen before is a replay.
COUPLER_MESSAGE_TTL_S = env_int("COUPLER_MESSAGE_TTL_S", 600)
# Heartbeats: refused when older than this or from further in the future.
COUPLER_HEARTBEAT_MAX_AGE_S = env_int("COUPLER_HEARTBEAT_MAX_AGE_S", 120)
COUPLER_CLOCK_SKEW_S = env_int("COUPLER_CLOCK_SKEW_S", 30)
# How long a heartbeat answer's check inputs (latency peers, firmware baseline) are
# reused per host; 0 reads them on every heartbeat.
COUPLER_CHECK_INPUTS_CACHE_S = env_int("COUPLER_CHECK_INPUTS_CACHE_S", 30)
# The networks the cluster's hosts live in (CIDRs): agents' latency endpoints must be inside.
COUPLER_AGENT_NETWORKS = env_str(
    "COUPLER_AGENT_NETWORKS",
    "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,fc00::/7,::1/128")

# Logs: JSON lines on stderr in production (one object per line, with the
# request id and, in tasks, the job id); LOG_FORMAT=text for a terminal.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "console.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(job_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"],
                             "formatter": "json" if LOG_FORMAT == "json" else "text"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
