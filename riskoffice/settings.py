"""riskoffice settings, read from the environment.

Two environments, chosen by ``RISKOFFICE_ENV``:

- ``dev`` (default): a newcomer's machine. SQLite under ``var/``, a secret key
  generated once and kept in ``var/``, Celery on kombu's filesystem transport
  (a real worker and beat, no service to install).
- ``production``: refuses to start without ``SECRET_KEY``,
  ``FIELD_ENCRYPTION_KEY`` and ``ALLOWED_HOSTS``, and without ``DATABASE_URL``
  and ``CELERY_BROKER_URL`` unless ``RISKOFFICE_ALLOW_EMBEDDED=1`` says that
  SQLite and the filesystem broker are meant; HTTPS only (HSTS, SSL redirect,
  secure cookies); webhook URLs that resolve to private addresses are refused.

``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis in
either environment.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RISKOFFICE_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _private_dir(path: Path) -> Path:
    """A directory under var/ only its owner may enter: it holds secrets, the dev database and the broker."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)  # also when an older version created it world-readable
    return path


def _dev_secret(filename: str) -> str:
    """A secret generated on first use and kept under var/ so restarts keep sessions and data."""
    path = _private_dir(VAR_DIR) / filename
    if not path.exists():
        # Created owner-only (no window in which another user could read it).
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


RISKOFFICE_ENV = env_str("RISKOFFICE_ENV", "dev")
if RISKOFFICE_ENV not in {"dev", "production"}:
    raise ImproperlyConfigured(f"RISKOFFICE_ENV must be 'dev' or 'production', got {RISKOFFICE_ENV!r}")
PRODUCTION = RISKOFFICE_ENV == "production"

if PRODUCTION:
    _missing = [n for n in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS") if not env_str(n)]
    if env_str("FIELD_ENCRYPTION_KEYS") or env_str("FIELD_ENCRYPTION_KEY_PROVIDER"):  # a keyring instead (keys.py)
        _missing = [n for n in _missing if n != "FIELD_ENCRYPTION_KEY"]
    if _missing:
        raise ImproperlyConfigured(f"production settings need {', '.join(_missing)} in the environment")
    # SQLite and kombu's filesystem broker are the newcomer's defaults; production uses them only when told to.
    if not env_bool("RISKOFFICE_ALLOW_EMBEDDED", False):
        _embedded = [n for n in ("DATABASE_URL", "CELERY_BROKER_URL") if not env_str(n)]
        if _embedded:
            raise ImproperlyConfigured(
                f"production settings need {' and '.join(_embedded)} (PostgreSQL and Redis); without them "
                "production would run on SQLite and the filesystem broker. Set RISKOFFICE_ALLOW_EMBEDDED=1 "
                "if that is really meant (docs/security.md)."
            )
    SECRET_KEY = env_str("SECRET_KEY")
else:
    SECRET_KEY = env_str("SECRET_KEY") or _dev_secret("secret_key")
# Field-encryption keyring (riskoffice/keys.py, docs/security.md): current key first, then older keys still
# readable. FIELD_ENCRYPTION_KEYS="new,old" or the single FIELD_ENCRYPTION_KEY; without either (dev only) the key
# file, one key per line, newest first. FIELD_ENCRYPTION_KEY_PROVIDER (a dotted path) plugs another source (KMS).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", []) or [k for k in [env_str("FIELD_ENCRYPTION_KEY")] if k]
FIELD_ENCRYPTION_KEY_FILE = Path(env_str("FIELD_ENCRYPTION_KEY_FILE") or VAR_DIR / "field_encryption_key")
FIELD_ENCRYPTION_WRAPPED_KEYS = env_list("FIELD_ENCRYPTION_WRAPPED_KEYS", [])
FIELD_ENCRYPTION_KEY_UNWRAP = env_str("FIELD_ENCRYPTION_KEY_UNWRAP")
FIELD_ENCRYPTION_KEY_PROVIDER = env_str("FIELD_ENCRYPTION_KEY_PROVIDER") or (
    f"riskoffice.keys.{'Environment' if FIELD_ENCRYPTION_KEYS or PRODUCTION else 'KeyFile'}KeyProvider"
)
if FIELD_ENCRYPTION_KEY_PROVIDER.endswith(".KeyFileKeyProvider") and not env_str("FIELD_ENCRYPTION_KEY_FILE"):
    _dev_secret("field_encryption_key")  # generated on first use
# django-cryptography's own default key; every encrypted field is given the keyring at start-up (crypto.py).
CRYPTOGRAPHY_KEY = FIELD_ENCRYPTION_KEYS[0] if FIELD_ENCRYPTION_KEYS else None

DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc assets, served from our static files (no CDN)
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",  # TOTP devices for two-factor sign-in (riskoffice/twofactor.py)
    "riskoffice",
    "riskoffice.register",
    "riskoffice.accesslog",
    "riskoffice.subjects",
    "dossiers",
    "scoring",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below), with a per-request nonce.
    "csp.middleware.CSPMiddleware",
    # Before anything reads a body or asks the database: 413 for oversized API bodies, 503 for outages.
    "riskoffice.middleware.RequestBodyLimitMiddleware",
    "riskoffice.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's LocaleMiddleware (language cookie, then Accept-Language, then LANGUAGE_CODE), except that the
    # partner API and the token endpoints always answer in English: their messages are part of the contract.
    "riskoffice.middleware.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Idle and absolute session timeouts (SESSION_IDLE_TIMEOUT_MINUTES, SESSION_ABSOLUTE_TIMEOUT_HOURS).
    "riskoffice.signin.SessionTimeoutMiddleware",
    # request.user.is_verified(): whether this session passed a second factor (django-otp)...
    "django_otp.middleware.OTPMiddleware",
    # ...and, until it has, the back-office and the admin send whoever must use one to the two-factor step.
    "riskoffice.signin.TwoFactorMiddleware",
    # Every read of personal data and every administrative change, after authentication (user or client known).
    "riskoffice.accesslog.middleware.AccessLogMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: refuses logins (back-office and admin) after repeated failures.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "riskoffice.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "riskoffice.urls"
WSGI_APPLICATION = "riskoffice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "riskoffice.roles.roles_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{_private_dir(VAR_DIR) / 'riskoffice.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A persistent connection is checked before a request reuses it: after an outage the first
        # request reconnects instead of failing on a dead socket.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web threads, web processes and the worker share the file. WAL lets readers run beside the one
    # writer; IMMEDIATE takes the write lock when a transaction begins, so a writer waits (up to the
    # timeout) instead of failing with "database is locked" when its read turns into a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=20,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    # The default file (in var/, itself 0700) is created owner-only before SQLite opens it; its -wal and
    # -shm files take the same mode.
    _sqlite_file = Path(DATABASES["default"]["NAME"])
    if not env_str("DATABASE_URL") and not _sqlite_file.exists():
        os.close(os.open(_sqlite_file, os.O_WRONLY | os.O_CREAT, 0o600))
    # Tests that start a worker process need the test database on disk, not in memory.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-riskoffice.sqlite3")}
# Behind PgBouncer in transaction mode (docs/scaling.md): no server-side cursor may outlive a statement.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DATABASE_BEHIND_PGBOUNCER", False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The back-office speaks French to a new visitor and English to whoever asks for it (the switch in the top
# bar, or the browser's Accept-Language). Translations: locale/, compiled by `manage.py compile_locales`.
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# No global thousand separator: it would also group years, ids and numbers written into HTML attributes.
# Amounts and percentages are grouped where they are shown (the `eur` and `pct` filters, floatformat:"0g").
USE_THOUSAND_SEPARATOR = False
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it even when serving from finders
WHITENOISE_USE_FINDERS = True  # serve static/ without collectstatic in dev and tests

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dossiers:queue"
LOGOUT_REDIRECT_URL = "login"

# --- Sessions: a back-office session ends after SESSION_IDLE_TIMEOUT_MINUTES without a request, and in any
# case SESSION_ABSOLUTE_TIMEOUT_HOURS after sign-in (riskoffice.signin.SessionTimeoutMiddleware).
SESSION_IDLE_TIMEOUT_MINUTES = env_int("SESSION_IDLE_TIMEOUT_MINUTES", 30)
SESSION_ABSOLUTE_TIMEOUT_HOURS = env_int("SESSION_ABSOLUTE_TIMEOUT_HOURS", 10)
if SESSION_IDLE_TIMEOUT_MINUTES < 1 or SESSION_ABSOLUTE_TIMEOUT_HOURS < 1:
    raise ImproperlyConfigured("SESSION_IDLE_TIMEOUT_MINUTES and SESSION_ABSOLUTE_TIMEOUT_HOURS must be at least 1")
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT_HOURS * 3600  # the cookie never outlives the absolute timeout
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION

# --- Two-factor sign-in (django-otp, TOTP): required for admins (superusers included) and senior analysts,
# offered to everyone else (riskoffice/twofactor.py). A wrong code makes the device wait 1, 2, 4, 8... s
# (times OTP_TOTP_THROTTLE_FACTOR) before the next try; TWO_FACTOR_FAILURE_LIMIT wrong codes sign the session out.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "riskoffice")
OTP_TOTP_THROTTLE_FACTOR = env_int("OTP_TOTP_THROTTLE_FACTOR", 1)
TWO_FACTOR_FAILURE_LIMIT = env_int("TWO_FACTOR_FAILURE_LIMIT", 5)

# --- HTTP security headers -------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Production is served over HTTPS only: HSTS, a redirect from http://, cookies marked Secure. Behind a
# TLS-terminating proxy, SECURE_PROXY_SSL_HEADER names the header the proxy sets (and overwrites) to say the
# client spoke HTTPS: "X-Forwarded-Proto" by default in production, "" when gunicorn itself terminates TLS.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000) if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# "preload" in the header only allows submitting the domain to browsers' preload lists (a manual step).
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain HTTP
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto" if PRODUCTION else None)
if _proxy_ssl_header and _proxy_ssl_header.lower() != "none":
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
# Content-Security-Policy (django-csp): everything from our own origin only; the few inline <script>/<style>
# blocks carry the request's nonce ({{ request.csp_nonce }}). Inline style="" attributes (bar widths, chart
# sizes) stay allowed: attributes cannot carry a nonce, and they cannot run script. No frame may embed us.
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Cache: rate-limit counters, shared by every process ---------------------------
# CACHE_URL (redis://…) in production and CI; the embedded default keeps them in files under var/,
# which every process on the machine shares, with no service to install.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CACHES["default"]["KEY_PREFIX"] = "riskoffice"

# --- Logins: django-axes locks a username from an address after repeated failures ----------
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# The address a login comes from: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost
# of them saw (riskoffice.signin.client_ip). Behind a proxy, REMOTE_ADDR is the proxy's for everyone.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "riskoffice.signin.client_ip"

# --- API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "oauth2_provider.contrib.rest_framework.OAuth2Authentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["riskoffice.api.HasClientScope"],
    "DEFAULT_PARSER_CLASSES": ["riskoffice.parsers.DepthLimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "riskoffice.api.problem_exception_handler",
    # Per client: ApiClient.rate_limit_per_minute, else API_RATE_LIMIT_PER_MINUTE (429 + Retry-After past it).
    "DEFAULT_THROTTLE_CLASSES": ["riskoffice.throttling.ClientRateThrottle"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI schema (/api/v1/schema/) and its Swagger UI / Redoc pages (/api/docs/), public and served
# from our own static files (no CDN: the back-office runs on closed networks). Annotations: riskoffice/openapi.py.
SPECTACULAR_SETTINGS = {
    "TITLE": "riskoffice partner API",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],  # a stale token must not keep a partner from reading the contract
    "ENUM_NAME_OVERRIDES": {
        "ScoreStatusEnum": ["pending", "scored", "failed"],
        "DecisionEnum": ["accept", "guarantee", "refuse", "refer"],
        "OutcomeStatusEnum": ["repaid", "defaulted", "written_off"],
        "HumanReviewStatusEnum": ["open", "completed"],
        "EventKindEnum": ["insolvency_proceeding", "payment_delay", "sepa_incident", "debt_collection"],
        "WebhookEventTypeEnum": [
            "score.completed",
            "dossier.challenged",
            "decision.overridden",
            "outcome.recorded",
            "outcome.corrected",
            "human_review.requested",
            "human_review.completed",
            "data_subject.erased",
        ],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "riskoffice.openapi.postprocess_schema",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

ACCESS_TOKEN_EXPIRE_SECONDS = env_int("ACCESS_TOKEN_EXPIRE_SECONDS", 3600)
if not 300 <= ACCESS_TOKEN_EXPIRE_SECONDS <= 86400:
    raise ImproperlyConfigured("ACCESS_TOKEN_EXPIRE_SECONDS must lie between 300 (5 min) and 86400 (24 h)")
OAUTH2_PROVIDER = {
    # Partners use the client-credentials grant only, server-wide: the token endpoint is oauthlib's
    # BackendApplicationServer, which knows no other grant (no password, no code, no implicit).
    "OAUTH2_SERVER_CLASS": "oauthlib.oauth2.BackendApplicationServer",
    "OAUTH2_VALIDATOR_CLASS": "riskoffice.oauth.PartnerOAuth2Validator",
    # Token lifetime: 1 h by default; the field uses 30 min to 2 h (docs/api.md).
    "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_EXPIRE_SECONDS,
    "SCOPES": {
        "scores:write": "Request credit scores",
        "scores:read": "Read credit scores",
        "outcomes:write": "Report what became of a credit (repaid, defaulted, written off)",
        "events:write": "Report negative events on a company or an individual",
        "webhooks:manage": "Register webhook endpoints",
        "monitoring:manage": "Watch companies: their score changes and negative events are sent to your webhooks",
    },
    "DEFAULT_SCOPES": ["scores:write", "scores:read"],
    "SCOPES_BACKEND_CLASS": "riskoffice.api.ApiClientScopes",
    # RFC 9700 (OAuth 2.0 Security BCP), all enforced: tokens only in the Authorization header, stored
    # hashed (SHA-256) at rest, no password or implicit grant; the rest concern flows we do not serve.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
}

# Named explicitly so that our migrations can point at DOT's (swappable) application model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# --- Celery ----------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
BROKER_CONFIGURED = CELERY_BROKER_URL is not None
if not BROKER_CONFIGURED:
    # Embedded default: kombu's filesystem transport, a real broker with no service.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control in the working directory
        "store_processed": False,
    }
else:
    # Redis: any countdown longer than visibility_timeout would be redelivered, so
    # long delays (webhook retries) live in the database instead (docs/architecture.md).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Queues by kind of work, so that machines can be given to one kind (docs/scaling.md): a worker started
# without -Q consumes them all; `celery -A riskoffice worker -Q scoring` serves score requests only.
CELERY_TASK_DEFAULT_QUEUE = "celery"  # sweeps, heartbeats, purges: small and periodic
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", "scoring", "webhooks", "bulk")]
CELERY_TASK_ROUTES = {
    "dossiers.tasks.score_pending": {"queue": "scoring"},
    "dossiers.tasks.score_dossier": {"queue": "scoring"},
    "alerts.tasks.deliver_webhook": {"queue": "webhooks"},
    "alerts.tasks.deliver_due_webhooks": {"queue": "webhooks"},
    "scoring.tasks.run_bulk_job": {"queue": "bulk"},  # analysts' files: minutes of work each
    "scoring.portfolio.rescore_chunk": {"queue": "bulk"},  # portfolio re-scores: thousands of companies a task
    "scoring.model.tasks.retrain_model": {"queue": "bulk"},  # a retraining: minutes of k-fold training
    "scoring.model.tasks.shadow_score_many": {"queue": "bulk"},  # the challenger's shadow scores: never urgent
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # every task is idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "riskoffice.tasks.heartbeat", "schedule": timedelta(seconds=30)},
    "deliver-due-webhooks": {"task": "alerts.tasks.deliver_due_webhooks", "schedule": timedelta(seconds=10)},
    "requeue-stalled-dossiers": {
        "task": "dossiers.tasks.requeue_stalled_dossiers",
        "schedule": timedelta(seconds=env_int("SCORING_REQUEUE_INTERVAL_SECONDS", 5)),
    },
    "requeue-stalled-bulk-jobs": {
        "task": "scoring.tasks.requeue_stalled_bulk_jobs",
        "schedule": timedelta(seconds=env_int("SCORING_REQUEUE_INTERVAL_SECONDS", 5)),
    },
    "clear-expired-tokens": {"task": "riskoffice.tasks.clear_expired_tokens", "schedule": timedelta(hours=6)},
    "purge-expired-idempotency-keys": {
        "task": "riskoffice.tasks.purge_expired_idempotency_keys",
        "schedule": timedelta(hours=1),
    },
}

# --- Domain settings -----------------------------------------------------------
# Request bodies on /api/ and /o/ larger than this are refused (413) before authentication or parsing.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
# JSON nested deeper than this is refused (400) before it is loaded (json.loads recurses per level).
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32)
# Requests a minute an API client may make, unless its ApiClient row says otherwise.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
# Token requests a minute from one address to /o/token/ (a token lives an hour: a partner needs few).
TOKEN_RATE_LIMIT_PER_MINUTE = env_int("TOKEN_RATE_LIMIT_PER_MINUTE", 30)
# Sandbox clients: this many scores over this many days, unless an admin sets the client's own allowance.
SANDBOX_ALLOWANCE = env_int("SANDBOX_ALLOWANCE", 5)
SANDBOX_ALLOWANCE_DAYS = env_int("SANDBOX_ALLOWANCE_DAYS", 14)
# Idempotency-Key on POSTs (riskoffice/idempotency.py): a key is kept this long, then purged hourly.
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600)
# A key in flight this long, its work not committed, belongs to a dead request: a retry takes it over.
# Longer than any request may take (PREFER_WAIT_MAX_SECONDS included).
IDEMPOTENCY_IN_FLIGHT_SECONDS = env_int("IDEMPOTENCY_IN_FLIGHT_SECONDS", 60)
# Prefer: wait=N on POST /api/v1/scores waits at most this long for the score (RFC 7240).
PREFER_WAIT_MAX_SECONDS = env_int("PREFER_WAIT_MAX_SECONDS", 10)
if IDEMPOTENCY_IN_FLIGHT_SECONDS <= PREFER_WAIT_MAX_SECONDS:
    raise ImproperlyConfigured("IDEMPOTENCY_IN_FLIGHT_SECONDS must exceed PREFER_WAIT_MAX_SECONDS")
# Webhook URLs resolving to loopback, private or link-local addresses are refused
# in production (SSRF); dev and tests deliver to local receivers.
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", not PRODUCTION)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Scoring batches (dossiers/batch.py): a worker claims up to this many pending dossiers at once...
SCORING_BATCH_SIZE = env_int("SCORING_BATCH_SIZE", 250)
# ...and holds them this long; a dead worker's dossiers are free again when it passes.
SCORING_LEASE_SECONDS = env_int("SCORING_LEASE_SECONDS", 15)
# A wake-up sent to the workers counts as outstanding (no other is sent) until a worker takes it, or this long.
SCORING_WAKE_UP_SECONDS = env_int("SCORING_WAKE_UP_SECONDS", 2)
# A dossier whose assessment raised this many times becomes failed.
SCORING_MAX_ATTEMPTS = env_int("SCORING_MAX_ATTEMPTS", 4)
# A dossier (or a queued bulk job) nobody holds that has not moved for this long is enqueued again
# (the broker lost its message, or its worker died); beat looks every SCORING_REQUEUE_INTERVAL_SECONDS.
SCORING_STALL_SECONDS = env_int("SCORING_STALL_SECONDS", 20)
SCORING_REQUEUE_INTERVAL_SECONDS = env_int("SCORING_REQUEUE_INTERVAL_SECONDS", 5)
if SCORING_STALL_SECONDS <= SCORING_LEASE_SECONDS:
    raise ImproperlyConfigured("SCORING_STALL_SECONDS must exceed SCORING_LEASE_SECONDS")
# Back-pressure: while the oldest dossier nobody has claimed waited longer than this, POST /api/v1/scores
# answers 503 with Retry-After instead of queueing more work than the workers can score.
SCORING_BACKLOG_MAX_SECONDS = env_int("SCORING_BACKLOG_MAX_SECONDS", 30)
# A row the sweep re-enqueues waits twice as long each time before the next try, at most this long.
REQUEUE_MAX_SECONDS = env_int("REQUEUE_MAX_SECONDS", 3600)
# An override granting credit for more than this (euros) waits for a second, senior analyst (dossiers/overrides.py).
OVERRIDE_APPROVAL_AMOUNT = env_int("OVERRIDE_APPROVAL_AMOUNT", 100_000)
# Data-source connectors of non-sandbox partners (docs/sources.md); the sandbox needs none of these.
COMPANY_REGISTRY_URL = env_str("COMPANY_REGISTRY_URL", "https://recherche-entreprises.api.gouv.fr")
BODACC_URL = env_str("BODACC_URL", "https://bodacc-datadila.opendatasoft.com")
OPEN_BANKING_URL = env_str("OPEN_BANKING_URL", "https://api.bridgeapi.io")
OPEN_BANKING_CLIENT_ID = env_str("OPEN_BANKING_CLIENT_ID", "")
OPEN_BANKING_CLIENT_SECRET = env_str("OPEN_BANKING_CLIENT_SECRET", "")
SOURCE_TIMEOUT_SECONDS = env_int("SOURCE_TIMEOUT_SECONDS", 5)
SOURCE_CACHE_SECONDS_REGISTRY = env_int("SOURCE_CACHE_SECONDS_REGISTRY", 24 * 3600)
SOURCE_CACHE_SECONDS_BODACC = env_int("SOURCE_CACHE_SECONDS_BODACC", 6 * 3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # At DEBUG, oauthlib logs each issued token in clear: never below INFO, whatever LOG_LEVEL says.
        "oauthlib": {"level": "INFO"},
        "oauth2_provider": {"level": "INFO"},
    },
}

# --- Portfolio re-score (issue 8) ---
# Companies per chunk: one Celery task, one transaction of scores (scoring/portfolio/).
PORTFOLIO_CHUNK_SIZE = env_int("PORTFOLIO_CHUNK_SIZE", 10_000)
# A worker holds its chunk this long, renewed between stages; a dead worker's chunk is taken over after it.
PORTFOLIO_LEASE_SECONDS = env_int("PORTFOLIO_LEASE_SECONDS", 15)
# A company's explanation (exact TreeSHAP) is stored when its score moved this many points or its band changed.
PORTFOLIO_MOVE_THRESHOLD = env_int("PORTFOLIO_MOVE_THRESHOLD", 20)
# A chunk that failed this many times fails its run (the error is kept on the chunk and the run).
PORTFOLIO_MAX_ATTEMPTS = env_int("PORTFOLIO_MAX_ATTEMPTS", 5)
# Retention per data category, as the GDPR register sets it (riskoffice.register.retention).
CELERY_BEAT_SCHEDULE["apply-retention"] = {
    "task": "riskoffice.register.tasks.apply_retention",
    "schedule": timedelta(hours=24),
}
CELERY_BEAT_SCHEDULE["requeue-portfolio-chunks"] = {
    "task": "scoring.portfolio.requeue_portfolio_chunks",
    "schedule": timedelta(seconds=env_int("PORTFOLIO_SWEEP_SECONDS", 5)),
}
# --- end of portfolio re-score ---

# --- Webhook delivery (issue 11) ---
from celery.schedules import crontab as _crontab  # noqa: E402

# Ports webhooks may be sent to while private URLs are refused (production); any port in development.
WEBHOOK_ALLOWED_PORTS = [int(port) for port in env_list("WEBHOOK_ALLOWED_PORTS", ["443", "8443"])]
# CA bundle webhook receivers' certificates are checked against; empty: the Mozilla bundle (certifi).
WEBHOOK_CA_BUNDLE = env_str("WEBHOOK_CA_BUNDLE", "")
# An endpoint failing this many days since its last success is disabled and its partner's contact e-mailed.
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", 5)
# After a secret rotation the previous secret keeps signing, beside the new one, this many hours.
WEBHOOK_SECRET_OVERLAP_HOURS = env_int("WEBHOOK_SECRET_OVERLAP_HOURS", 24)
# Daily digests leave at this local time (TIME_ZONE), HH:MM.
WEBHOOK_DIGEST_AT = env_str("WEBHOOK_DIGEST_AT", "07:00")
try:
    _digest_hour, _digest_minute = (int(part) for part in WEBHOOK_DIGEST_AT.split(":"))
    if not (0 <= _digest_hour < 24 and 0 <= _digest_minute < 60):
        raise ValueError
except ValueError:
    raise ImproperlyConfigured(f"WEBHOOK_DIGEST_AT must be HH:MM, not {WEBHOOK_DIGEST_AT!r}") from None
# Beat reads crontab entries in this zone (Celery's default is UTC): "07:00" means 07:00 in Paris.
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ROUTES["alerts.tasks.send_webhook_digests"] = {"queue": "webhooks"}
CELERY_BEAT_SCHEDULE["send-webhook-digests"] = {
    "task": "alerts.tasks.send_webhook_digests",
    "schedule": _crontab(hour=_digest_hour, minute=_digest_minute),
}
# --- end of webhook delivery ---

# --- Monitoring (issue 11) ---
from celery.schedules import crontab as _monitoring_crontab  # noqa: E402

# A re-score that lowers a monitored company's score by this many points: alert (critical) + score.dropped.
MONITORING_DROP_POINTS = env_int("MONITORING_DROP_POINTS", 50)
# Any other move of this many points (no band change): score.changed to the interested partners, no alert.
MONITORING_CHANGE_POINTS = env_int("MONITORING_CHANGE_POINTS", 10)
if not 1 <= MONITORING_CHANGE_POINTS <= MONITORING_DROP_POINTS:
    raise ImproperlyConfigured("MONITORING_CHANGE_POINTS must lie between 1 and MONITORING_DROP_POINTS")
# The daily re-score of the monitored companies starts at this local time (TIME_ZONE), HH:MM; "off" disables it.
MONITORING_DAILY_AT = env_str("MONITORING_DAILY_AT", "02:00")
# The daily BODACC check of the monitored SIRENs, HH:MM local time; "off" disables it.
MONITORING_BODACC_AT = env_str("MONITORING_BODACC_AT", "06:00")
# SIRENs one BODACC check task reads (one request each, SOURCE_TIMEOUT_SECONDS at most; one transaction each).
MONITORING_BODACC_BATCH = env_int("MONITORING_BODACC_BATCH", 50)
# Notices published this many days back are looked at: a company newly monitored does not alert on its history.
MONITORING_BODACC_LOOKBACK_DAYS = env_int("MONITORING_BODACC_LOOKBACK_DAYS", 30)


def _monitoring_schedule(name: str, value: str | None) -> object | None:
    """A HH:MM local time as a beat crontab (CELERY_TIMEZONE = TIME_ZONE), or None for "off"."""
    if (value or "").strip().lower() in {"off", "none", "never", ""}:
        return None
    try:
        hour, minute = (int(part) for part in value.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(f'{name} must be HH:MM or "off", not {value!r}') from None
    return _monitoring_crontab(hour=hour, minute=minute)


CELERY_TIMEZONE = TIME_ZONE  # crontab entries are local (Paris) times; harmless for the interval entries
for _entry, _setting, _task in (
    ("monitoring-daily-rescore", "MONITORING_DAILY_AT", "alerts.monitoring.daily_rescore"),
    ("monitoring-bodacc-check", "MONITORING_BODACC_AT", "alerts.monitoring.bodacc_check"),
):
    _schedule = _monitoring_schedule(_setting, globals()[_setting])
    if _schedule is not None:
        CELERY_BEAT_SCHEDULE[_entry] = {"task": _task, "schedule": _schedule}
# A negative event's re-score whose message was lost (broker down at commit) is sent again by this sweep.
CELERY_BEAT_SCHEDULE["monitoring-requeue-event-rescores"] = {
    "task": "alerts.monitoring.requeue_event_rescores",
    "schedule": timedelta(seconds=env_int("MONITORING_EVENT_SWEEP_SECONDS", 60)),
}
# --- end of monitoring ---

# --- Analyst alerts and e-mail (issue 11) ---
# Django's mail backend: the console in the demo (messages printed by the worker); SMTP once EMAIL_HOST is set,
# or any backend named by EMAIL_BACKEND (e.g. django.core.mail.backends.filebased.EmailBackend).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
# STARTTLS on the submission port; EMAIL_USE_SSL for implicit TLS (port 465) instead.
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# The sender of alert e-mails (and of anything else the back-office sends).
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "riskoffice <riskoffice@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The back-office's address as analysts reach it: e-mails link to it (there is no request to take it from).
BACKOFFICE_URL = env_str("BACKOFFICE_URL", "http://127.0.0.1:8000")
# Alert e-mails go to the whole team at once, in this language ("fr", "en"; empty: LANGUAGE_CODE).
ALERT_EMAIL_LANGUAGE = env_str("ALERT_EMAIL_LANGUAGE", "")
# An alert still not e-mailed this long after it was raised (its task lost) is sent by the sweep.
ALERT_EMAIL_SWEEP_AFTER_SECONDS = env_int("ALERT_EMAIL_SWEEP_AFTER_SECONDS", 120)
CELERY_BEAT_SCHEDULE["email-unsent-alerts"] = {
    "task": "alerts.tasks.email_unsent_alerts",
    "schedule": timedelta(seconds=env_int("ALERT_EMAIL_SWEEP_INTERVAL_SECONDS", 60)),
}
TEMPLATES[0]["OPTIONS"]["context_processors"].append("alerts.context.alerts_context")
# --- end of analyst alerts ---

# --- The API schema's names for issue 11's choice sets ---
# One component per choice set (riskoffice/openapi.py); the event types follow alerts/events.py.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "WebhookEventTypeEnum": "alerts.events.EVENT_TYPES",
        "DeliveryEventTypeEnum": "riskoffice.openapi.DELIVERY_EVENT_TYPES",
        "DeliveryStatusEnum": "riskoffice.openapi.DELIVERY_STATUSES",
        "BandEnum": ["A", "B", "C", "D", "E"],
        "CompanyEventKindEnum": "riskoffice.openapi.COMPANY_EVENT_KINDS",
    }
)
# --- end of the API schema's names ---

# --- The labelled set (issue 12) ---
# A repaid credit becomes a "good" label for train_model only once this many months have passed since its
# decision (scoring.model.registry.labelled_history); a default counts whenever it happened. 0: at once.
OUTCOME_PERFORMANCE_WINDOW_MONTHS = env_int("OUTCOME_PERFORMANCE_WINDOW_MONTHS", 12)
if OUTCOME_PERFORMANCE_WINDOW_MONTHS < 0:
    raise ImproperlyConfigured("OUTCOME_PERFORMANCE_WINDOW_MONTHS must be 0 or more months.")
# --- end of the labelled set ---


# --- Model governance (issue 12): retraining, champion and challenger, shadow scoring, drift ---
def env_float(name: str, default: float) -> float:
    value = env_str(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


# Scheduled retraining: the day of the month (1-28) at MODEL_RETRAIN_AT (HH:MM local); "off" disables it.
MODEL_RETRAIN_DAY_OF_MONTH = env_int("MODEL_RETRAIN_DAY_OF_MONTH", 1)
if not 1 <= MODEL_RETRAIN_DAY_OF_MONTH <= 28:
    raise ImproperlyConfigured("MODEL_RETRAIN_DAY_OF_MONTH must lie between 1 and 28.")
MODEL_RETRAIN_AT = env_str("MODEL_RETRAIN_AT", "03:00")
# A retraining starts on its own once this many matured outcomes arrived since the last one (0: never).
MODEL_RETRAIN_MIN_NEW_OUTCOMES = env_int("MODEL_RETRAIN_MIN_NEW_OUTCOMES", 200)
# A retraining learns the applications of the last MODEL_RETRAIN_WINDOW_MONTHS months (0: every matured outcome).
# After a drift, older outcomes teach the risk as it was; keep it above OUTCOME_PERFORMANCE_WINDOW_MONTHS, or the
# window holds defaults and no matured repayment (docs/models.md).
MODEL_RETRAIN_WINDOW_MONTHS = env_int("MODEL_RETRAIN_WINDOW_MONTHS", 0)
if MODEL_RETRAIN_WINDOW_MONTHS < 0:
    raise ImproperlyConfigured("MODEL_RETRAIN_WINDOW_MONTHS must be 0 (every month) or a number of months.")
# The out-of-time holdout champion and challenger are compared on: the latest share of the labelled set.
MODEL_HOLDOUT_SHARE = env_float("MODEL_HOLDOUT_SHARE", 0.2)
if not 0.05 <= MODEL_HOLDOUT_SHARE <= 0.5:
    raise ImproperlyConfigured("MODEL_HOLDOUT_SHARE must lie between 0.05 and 0.5.")
# Bootstrap resamples of the holdout for the intervals of the comparison.
MODEL_BOOTSTRAP_RESAMPLES = env_int("MODEL_BOOTSTRAP_RESAMPLES", 1000)
# Promotion gates (scoring/model/comparison.py). Not worse beyond noise: the upper end of the 95 % interval
# of (challenger - champion) AUC must reach -MODEL_GATE_AUC_TOLERANCE, and of their Brier difference the
# lower end must stay under +MODEL_GATE_BRIER_TOLERANCE. Calibration: in every band with enough files the
# challenger's mean PD lies within MODEL_GATE_CALIBRATION_TOLERANCE (absolute) of the band's interval of the
# realised default rate, or misses it by no more than the champion's. The holdout needs
# MODEL_GATE_MIN_DEFAULTS defaults for any of it to mean something.
MODEL_GATE_AUC_TOLERANCE = env_float("MODEL_GATE_AUC_TOLERANCE", 0.0)
MODEL_GATE_BRIER_TOLERANCE = env_float("MODEL_GATE_BRIER_TOLERANCE", 0.0)
MODEL_GATE_CALIBRATION_TOLERANCE = env_float("MODEL_GATE_CALIBRATION_TOLERANCE", 0.02)
MODEL_GATE_MIN_DEFAULTS = env_int("MODEL_GATE_MIN_DEFAULTS", 10)
# Drift: the daily PSI of the champion's last MODEL_DRIFT_WINDOW_DAYS of scores against its training reference,
# at MODEL_DRIFT_AT (HH:MM local, "off" disables); above MODEL_PSI_ALERT an alert to senior analysts.
MODEL_DRIFT_AT = env_str("MODEL_DRIFT_AT", "04:00")
MODEL_DRIFT_WINDOW_DAYS = env_int("MODEL_DRIFT_WINDOW_DAYS", 30)
MODEL_DRIFT_MIN_SCORES = env_int("MODEL_DRIFT_MIN_SCORES", 100)
MODEL_PSI_ALERT = env_float("MODEL_PSI_ALERT", 0.25)
_schedule = _monitoring_schedule("MODEL_DRIFT_AT", MODEL_DRIFT_AT)
if _schedule is not None:
    CELERY_BEAT_SCHEDULE["model-drift-check"] = {"task": "scoring.model.tasks.drift_check_daily", "schedule": _schedule}
if _monitoring_schedule("MODEL_RETRAIN_AT", MODEL_RETRAIN_AT) is not None:
    _hour, _minute = (int(part) for part in MODEL_RETRAIN_AT.split(":"))
    CELERY_BEAT_SCHEDULE["model-retrain-monthly"] = {
        "task": "scoring.model.tasks.retrain_scheduled",
        "schedule": _monitoring_crontab(hour=_hour, minute=_minute, day_of_month=MODEL_RETRAIN_DAY_OF_MONTH),
    }
# New mature outcomes are counted, and a retraining whose worker died is failed, by this sweep.
CELERY_BEAT_SCHEDULE["model-retrain-sweep"] = {
    "task": "scoring.model.tasks.retrain_sweep",
    "schedule": timedelta(minutes=env_int("MODEL_RETRAIN_SWEEP_MINUTES", 15)),
}
# --- end of model governance ---
