"""AIProxy settings: one module, driven by environment variables.

Development defaults need nothing set: with no DATABASE_URL an embedded PostgreSQL
(pgvector) is started, with no REDIS_URL an embedded Redis, and the secrets are generated
per install. Production sets the URLs, SECRET_KEY, AIPROXY_ENCRYPTION_KEY, ALLOWED_HOSTS,
BASE_DOMAIN and friends in the environment, and refuses to start without the two secrets.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# --- Secrets ----------------------------------------------------------------------------
# SECRET_KEY and AIPROXY_ENCRYPTION_KEY come from the environment. Only the embedded development
# stack (aiproxy_site/embedded.py: the embedded PostgreSQL in use, or AIPROXY_DEV_SECRETS=1) may
# go without: it generates its own, once per install, in <AIPROXY_DATA_DIR>/secrets.json (0600).
# AIPROXY_ENCRYPTION_KEY is a comma-separated list: the first key encrypts provider credentials,
# every key decrypts them (rotation: put the new key first, run `manage.py credentials_reencrypt`,
# then drop the old one).
from aiproxy_site.embedded import embedded_database_in_use  # noqa: E402

EMBEDDED_STACK = env_bool("AIPROXY_DEV_SECRETS", False) or embedded_database_in_use(os.environ.get("DATABASE_URL", ""))
_secrets = {name: os.environ.get(name, "").strip() for name in ("SECRET_KEY", "AIPROXY_ENCRYPTION_KEY")}
_missing = [name for name, value in _secrets.items() if not value.strip(", ")]
if _missing and not EMBEDDED_STACK:
    raise SystemExit(
        f"AIProxy: {' and '.join(_missing)} must be set (DATABASE_URL is not the embedded development database); "
        f"generate {'each' if len(_missing) > 1 else 'one'} with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
if _missing:
    from aiproxy_site.embedded import install_secrets

    _generated = install_secrets()
    _secrets.update({name: _generated[name] for name in _missing})
SECRET_KEY = _secrets["SECRET_KEY"]
# Keys for provider credentials at rest (each a string a Fernet key is derived from); the first encrypts.
ENCRYPTION_KEYS = [key.strip() for key in _secrets["AIPROXY_ENCRYPTION_KEY"].split(",") if key.strip()]
if EMBEDDED_STACK:
    # the published development key an embedded install used before it had its own: it still
    # decrypts what it encrypted there (credentials_reencrypt moves those to the install's key)
    ENCRYPTION_KEYS.append("dev-insecure-secret-key-change-me-in-production-0123456789")
BASE_DOMAIN = os.environ.get("BASE_DOMAIN", "localhost")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{BASE_DOMAIN},.{BASE_DOMAIN},127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", f"http://localhost:{os.environ.get('PORT', '8000')}")  # links in emails
# Behind a reverse proxy that sets X-Forwarded-Host and X-Forwarded-Proto itself (replacing any a
# client sent), trust them; otherwise a client could name any workspace's host.
TRUSTED_PROXY = env_bool("AIPROXY_TRUSTED_PROXY", False)
USE_X_FORWARDED_HOST = TRUSTED_PROXY
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY else None

# --- Real parts -------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    from aiproxy_site.embedded import postgres_url

    DATABASE_URL = postgres_url()
REDIS_URL = os.environ.get("REDIS_URL", "")
if not REDIS_URL:
    from aiproxy_site.embedded import redis_url

    REDIS_URL = redis_url()
    os.environ.setdefault("REDIS_URL", REDIS_URL)
os.environ.setdefault("DATABASE_URL", DATABASE_URL)

_db = dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")))
_db["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES = {"default": _db}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)


def _redis_with_db(url: str, db: int) -> str:
    """The same Redis server, another logical database (used for Celery and Channels)."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return f"unix://{parsed.path}?db={db}"
    return parsed._replace(path=f"/{db}").geturl()


def _celery_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return f"redis+socket://{parsed.path}?virtual_host={CELERY_REDIS_DB}"
    return _redis_with_db(url, CELERY_REDIS_DB)


CELERY_REDIS_DB = int(os.environ.get("CELERY_REDIS_DB", "1"))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "usage-flush": {"task": "analytics.tasks.usage_flush", "schedule": 1.0},
    # response cache: drop expired entries and keep each workspace under its size cap
    "cache-evict": {"task": "cache.tasks.cache_evict_all",
                    "schedule": float(os.environ.get("CACHE_EVICT_INTERVAL_SECONDS", "300"))},
    # deployment health (gateway/catalog/health.py): staff emails on circuit transitions, and active
    # checks of the deployments with health_check on
    "deployment-health-alerts": {"task": "gateway.catalog.tasks.deployment_health_alerts",
                                 "schedule": float(os.environ.get("GATEWAY_HEALTH_ALERT_INTERVAL_SECONDS", "10"))},
    "deployment-health-checks": {"task": "gateway.catalog.tasks.deployment_health_checks",
                                 "schedule": float(os.environ.get("GATEWAY_HEALTH_CHECK_INTERVAL_SECONDS", "60"))},
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_redis_with_db(REDIS_URL, int(os.environ.get("CHANNELS_REDIS_DB", "2")))]},
    }
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _redis_with_db(REDIS_URL, int(os.environ.get("CACHE_REDIS_DB", "3"))),
        "KEY_PREFIX": "aiproxy",
    }
}

# --- Apps ----------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "daphne",
    "tenants",
    "gateway.catalog",
    "billing",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "keys",
    "analytics",
    "cache",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Workspace"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
SHOW_PUBLIC_IF_NO_TENANT_FOUND = True

MIDDLEWARE = [
    "tenants.middleware.WorkspaceHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "tenants.middleware.CurrentWorkspaceMiddleware",
]

ROOT_URLCONF = "aiproxy_site.urls"
ASGI_APPLICATION = "aiproxy_site.asgi.application"
WSGI_APPLICATION = None

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
                "tenants.context_processors.workspace",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# --- allauth: email + password -----------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = os.environ.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_SIGNUP_FORM_CLASS = "tenants.forms.SignupForm"
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_UNIQUE_EMAIL = True
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"

# --- Email ------------------------------------------------------------------------------
EMAIL_URL = os.environ.get("EMAIL_URL", "console://")
_email = urlparse(EMAIL_URL)
if _email.scheme == "console":
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif _email.scheme == "locmem":
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
elif _email.scheme in {"smtp", "smtps", "submission"}:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 587 if _email.scheme == "submission" else 25)
    EMAIL_HOST_USER = _email.username or ""
    EMAIL_HOST_PASSWORD = _email.password or ""
    EMAIL_USE_SSL = _email.scheme == "smtps"
    EMAIL_USE_TLS = _email.scheme == "submission"
else:
    raise ValueError(f"EMAIL_URL scheme {_email.scheme!r} is not supported (console, locmem, smtp, smtps, submission)")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "AIProxy <noreply@aiproxy.local>")

# --- Stripe ----------------------------------------------------------------------------
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")

# --- DRF ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api_auth.AdminTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api_auth.IsWorkspaceMember"],
    "DEFAULT_PARSER_CLASSES": ["tenants.api_parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AIProxy management API",
    "DESCRIPTION": "Manage a workspace's API keys. Authenticate with a browser session or "
    "`Authorization: Bearer <workspace admin token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Gateway -------------------------------------------------------------------------------
GATEWAY_MAX_BODY_BYTES = int(os.environ.get("GATEWAY_MAX_BODY_BYTES", str(16 * 1024 * 1024)))
GATEWAY_UPSTREAM_TIMEOUT = float(os.environ.get("GATEWAY_UPSTREAM_TIMEOUT", "600"))
GATEWAY_UPSTREAM_CONNECT_TIMEOUT = float(os.environ.get("GATEWAY_UPSTREAM_CONNECT_TIMEOUT", "10"))
# the semantic cache's embedding service (gateway/hotpath/embedder.py), one per host
GATEWAY_EMBEDDER_SOCKET = os.environ.get("GATEWAY_EMBEDDER_SOCKET", "")
if not GATEWAY_EMBEDDER_SOCKET:
    from aiproxy_site.embedded import data_dir as _data_dir

    GATEWAY_EMBEDDER_SOCKET = str(_data_dir() / "embedder.sock")
GATEWAY_EMBEDDER_TIMEOUT = float(os.environ.get("GATEWAY_EMBEDDER_TIMEOUT", "2"))
# connections from each gateway worker to PostgreSQL, for semantic cache lookups
GATEWAY_DB_POOL_SIZE = int(os.environ.get("GATEWAY_DB_POOL_SIZE", "8"))
# rebuilds a key's hot record from PostgreSQL when Redis has none (gateway.hotpath.directory.Directory)
GATEWAY_KEY_LOADER = "keys.services.key_record_load"
# usage events a crashed worker read but never acknowledged are re-read after this long
USAGE_RECLAIM_IDLE_MS = int(os.environ.get("USAGE_RECLAIM_IDLE_MS", "30000"))
FAKE_PROVIDER_URL = os.environ.get("FAKE_PROVIDER_URL", "http://127.0.0.1:8100")
# circuit breaker per deployment (gateway/hotpath/health.py): it opens after this many failures in a
# row, or at this error rate over the window once the window holds the minimum of requests; after
# the cooldown one request tries the deployment again
GATEWAY_BREAKER_FAILURES = int(os.environ.get("GATEWAY_BREAKER_FAILURES", "5"))
GATEWAY_BREAKER_ERROR_RATE = float(os.environ.get("GATEWAY_BREAKER_ERROR_RATE", "0.5"))
GATEWAY_BREAKER_WINDOW_SECONDS = float(os.environ.get("GATEWAY_BREAKER_WINDOW_SECONDS", "30"))
GATEWAY_BREAKER_MIN_REQUESTS = int(os.environ.get("GATEWAY_BREAKER_MIN_REQUESTS", "20"))
GATEWAY_BREAKER_COOLDOWN_SECONDS = float(os.environ.get("GATEWAY_BREAKER_COOLDOWN_SECONDS", "15"))

# --- i18n, static ----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".aiproxy" / "static"
WHITENOISE_ROOT = BASE_DIR / "static" / "root"  # served at the site root: /favicon.ico
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SESSION_COOKIE_HTTPONLY = True

# Django's dictConfig, then redaction of API keys from every log line (aiproxy_site/log_redaction.py)
LOGGING_CONFIG = "aiproxy_site.log_redaction.logging_configure"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
WHITENOISE_USE_FINDERS = True
