"""Django settings for the Inference Model Manager.

Every environment variable the project reads is read here, through the strict readers in
``inferencemgmt.environ``, and nowhere else. The README lists each one with its default.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from inferencemgmt import environ as env

# Lets type-checked generics such as ``ModelAdmin[Operation]`` work at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Django core ------------------------------------------------------------------------------------
DEBUG = env.boolean("DJANGO_DEBUG", False)
SECRET_KEY = env.secret("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Environment variable DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) is required unless DJANGO_DEBUG=true."
        )
    # Never a known key, even in development: a known key forges sessions. A key made for this
    # process alone means sessions end with it (`make dev` keeps one in .devstack/ instead).
    SECRET_KEY = secrets.token_urlsafe(50)

# Error reports (the DEBUG page, logged reports) hide secrets by name and by value, DEBUG or not.
DEFAULT_EXCEPTION_REPORTER_FILTER = "inferencemgmt.errorreports.SecretsReporterFilter"

ALLOWED_HOSTS = env.string_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.string_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "mozilla_django_oidc",
    "inferencemgmt.operations",
    "tenants",
    "endpoints",
    "models_store",
    "servings",
    "audit",
    "usage",
]

MIDDLEWARE = [
    "inferencemgmt.requestlog.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (collected into STATIC_ROOT at image build) straight from the WSGI process.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "inferencemgmt.api.exceptions.DomainErrorMiddleware",
    # Inside authentication, messages and the error middleware: it sees who acted and how it ended.
    "audit.middleware.AuditMiddleware",
]

# The original API (Falcon) strips one trailing slash; routes accept it optionally instead of redirecting.
APPEND_SLASH = False

ROOT_URLCONF = "inferencemgmt.urls"
WSGI_APPLICATION = "inferencemgmt.wsgi.application"

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
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env.secret("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env.integer("DATABASE_CONN_MAX_AGE_SECONDS", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Integration tests start real Celery workers that must see the test database: keep it in a file.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies (gzip) written by collectstatic; no manifest, so a missing build step never breaks a page.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Static files from the source tree (app and project static dirs), re-read when they change: for
# development; an image serves what collectstatic gathered at build time.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = env.boolean("IMM_STATIC_AUTOREFRESH", DEBUG)

# Largest JSON body the API parses (the multipart upload routes stream and are not bound by it).
IMM_MAX_JSON_BODY_BYTES = env.integer("IMM_MAX_JSON_BODY_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = IMM_MAX_JSON_BODY_BYTES

# Behind an ingress that terminates TLS: trust its X-Forwarded-Proto/Host so that absolute URLs
# (the console's OIDC callback) say https and the public host name.
IMM_TRUST_PROXY_HEADERS = env.boolean("DJANGO_TRUST_PROXY_HEADERS", False)
if IMM_TRUST_PROXY_HEADERS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.boolean("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Identity provider (OIDC) -----------------------------------------------------------------------
OIDC_ISSUER = env.string("OIDC_ISSUER", "").rstrip("/")
OIDC_CA_FILE = env.existing_file("OIDC_CA_FILE", "")
OIDC_API_CLIENT_ID = env.string("OIDC_API_CLIENT_ID", "")
OIDC_API_CLIENT_SECRET = env.secret("OIDC_API_CLIENT_SECRET", "")
OIDC_CLI_CLIENT_ID = env.string("OIDC_CLI_CLIENT_ID", "")
# Tokens minted for either client are accepted: the console/API client and the CLI client.
OIDC_AUDIENCES = [cid for cid in (OIDC_API_CLIENT_ID, OIDC_CLI_CLIENT_ID) if cid]
OIDC_USERNAME_CLAIM = env.string("OIDC_USERNAME_CLAIM", "email")
OIDC_GROUPS_CLAIM = env.string("OIDC_GROUPS_CLAIM", "groups")
IMM_ADMIN_GROUP = env.string("IMM_ADMIN_GROUP", "admin")
OIDC_LEEWAY_SECONDS = env.integer("OIDC_LEEWAY_SECONDS", 30, minimum=0)
OIDC_JWKS_MIN_REFRESH_SECONDS = env.number("OIDC_JWKS_MIN_REFRESH_SECONDS", 5.0, minimum=0)
OIDC_DISCOVERY_TTL_SECONDS = env.integer("OIDC_DISCOVERY_TTL_SECONDS", 3600, minimum=0)
OIDC_HTTP_TIMEOUT_SECONDS = env.number("OIDC_HTTP_TIMEOUT_SECONDS", 5.0, minimum=0.1)
OIDC_SCOPES = env.string("OIDC_SCOPES", "openid email groups profile")
# Redirect URI of the CLI's local callback server (GET /authenticate); OOB when ?offline is given.
IMM_CLI_REDIRECT_URI = env.string("IMM_CLI_REDIRECT_URI", "http://127.0.0.1:5555/callback")
IMM_CLI_OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"

# mozilla-django-oidc (console and browsable-API login). The provider endpoints are not configured
# here: inferencemgmt.auth.console fills them from discovery, so one issuer URL is the only input.
AUTHENTICATION_BACKENDS = ["inferencemgmt.auth.console.ConsoleOIDCBackend"]
OIDC_RP_CLIENT_ID = OIDC_API_CLIENT_ID
OIDC_RP_CLIENT_SECRET = OIDC_API_CLIENT_SECRET
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = OIDC_SCOPES
OIDC_OP_AUTHORIZATION_ENDPOINT = ""
OIDC_OP_TOKEN_ENDPOINT = ""
OIDC_OP_USER_ENDPOINT = ""
OIDC_OP_JWKS_ENDPOINT = ""  # unused: ID tokens are verified by inferencemgmt.auth.oidc
OIDC_USE_PKCE = True
OIDC_VERIFY_SSL: bool | str = OIDC_CA_FILE or True
OIDC_TIMEOUT = OIDC_HTTP_TIMEOUT_SECONDS
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
LOGIN_URL = "oidc_authentication_init"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
ALLOW_LOGOUT_GET_METHOD = False

# --- Kubernetes -------------------------------------------------------------------------------------
# The management API's own identity; every call made for a user impersonates that user.
IMM_KUBECONFIG = env.existing_file("IMM_KUBECONFIG", "")
IMM_KUBE_CONTEXT = env.string("IMM_KUBE_CONTEXT", "")
IMM_KUBE_AUTH_MODE = env.choice("IMM_KUBE_AUTH_MODE", ("impersonate", "passthrough"), "impersonate")
IMM_KUBE_CONNECT_TIMEOUT_SECONDS = env.number("IMM_KUBE_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1)
IMM_KUBE_READ_TIMEOUT_SECONDS = env.number("IMM_KUBE_READ_TIMEOUT_SECONDS", 30.0, minimum=0.1)
IMM_KUBE_RETRIES = env.integer("IMM_KUBE_RETRIES", 3, minimum=0)
IMM_KUBE_CLIENT_CACHE_SIZE = env.integer("IMM_KUBE_CLIENT_CACHE_SIZE", 64, minimum=1)
IMM_KUBE_CLIENT_CACHE_TTL_SECONDS = env.number("IMM_KUBE_CLIENT_CACHE_TTL_SECONDS", 300.0, minimum=0)
# Pass-through needs the user's own token for console sessions too.
OIDC_STORE_ID_TOKEN = IMM_KUBE_AUTH_MODE == "passthrough"
SERVING_TEMPLATES_NAMESPACE = env.string("SERVING_TEMPLATES_NAMESPACE", "imm-servings")
PLATFORM_DOMAIN = env.string("PLATFORM_DOMAIN", "default")
# Where serving pods' images come from, applied by the controller when it renders an endpoint (the
# templates' `image` filter): a registry prefix put before every serving image (one value for an
# air-gapped mirror), and a JSON map serving name -> full image reference that overrides one serving.
SERVING_IMAGE_REGISTRY = env.string("SERVING_IMAGE_REGISTRY", "").rstrip("/")
SERVING_IMAGES = env.string_map("SERVING_IMAGES", {})
# The highest maxReplicas an endpoint's autoscaling may ask for (README "Autoscaling"), whatever the quota.
ENDPOINT_AUTOSCALING_MAX_REPLICAS = env.integer("ENDPOINT_AUTOSCALING_MAX_REPLICAS", 100, minimum=1)

# --- Object store (S3) ------------------------------------------------------------------------------
S3_ENDPOINT_URL = env.string("S3_ENDPOINT_URL", "")
S3_ACCESS_KEY_ID = env.secret("S3_ACCESS_KEY_ID", "")
S3_SECRET_ACCESS_KEY = env.secret("S3_SECRET_ACCESS_KEY", "")
S3_REGION = env.string("S3_REGION", "us-east-1")
# Where serving pods reach the store, written into each tenant's access secret (empty:
# S3_ENDPOINT_URL). The API may reach it at another address than pods do (the devstack's is loopback).
S3_SERVING_ENDPOINT_URL = env.string("S3_SERVING_ENDPOINT_URL", "")
S3_CA_FILE = env.existing_file("S3_CA_FILE", "")
S3_CONNECT_TIMEOUT_SECONDS = env.number("S3_CONNECT_TIMEOUT_SECONDS", 5.0, minimum=0.1)
S3_READ_TIMEOUT_SECONDS = env.number("S3_READ_TIMEOUT_SECONDS", 60.0, minimum=0.1)
S3_MAX_ATTEMPTS = env.integer("S3_MAX_ATTEMPTS", 3, minimum=1)
# Tenant identities (issue 18): each tenant's serving pods get a key of their own that reads only its
# bucket. `aws-iam`: the IAM API (AWS, SeaweedFS's embedded IAM); `minio`: MinIO's admin API; `none`:
# the store cannot make identities, tenants get no key and their serving pods cannot read models
# (never the platform key).
IMM_STORE_IDENTITY_BACKEND = env.choice("IMM_STORE_IDENTITY_BACKEND", ("aws-iam", "minio", "none"), "aws-iam")
# The IAM endpoint (empty: S3_ENDPOINT_URL, where SeaweedFS serves it) and the key that may manage
# users there (empty: the platform's S3 key).
S3_IAM_ENDPOINT_URL = env.string("S3_IAM_ENDPOINT_URL", "")
S3_IAM_ACCESS_KEY_ID = env.secret("S3_IAM_ACCESS_KEY_ID", "")
S3_IAM_SECRET_ACCESS_KEY = env.secret("S3_IAM_SECRET_ACCESS_KEY", "")
# Key rotation (POST /tenants/<name>/credentials/rotate, tenants.rotation): a tenant key older than this
# many days is rotated by a periodic task (0: never), checked every IMM_STORE_KEY_ROTATION_CHECK_SECONDS.
# A rotation waits this long for the tenant's endpoints to roll onto the new key before it fails and
# keeps the old key. Periodic rotations act as IMM_STORE_KEY_ROTATION_USER in the admin group.
IMM_STORE_KEY_ROTATION_DAYS = env.integer("IMM_STORE_KEY_ROTATION_DAYS", 0, minimum=0)
IMM_STORE_KEY_ROTATION_CHECK_SECONDS = env.number("IMM_STORE_KEY_ROTATION_CHECK_SECONDS", 3600.0, minimum=10)
IMM_STORE_KEY_ROTATION_ROLLOUT_SECONDS = env.number("IMM_STORE_KEY_ROTATION_ROLLOUT_SECONDS", 900.0, minimum=1)
IMM_STORE_KEY_ROTATION_USER = env.string("IMM_STORE_KEY_ROTATION_USER", "imm-key-rotation")

# --- Redis and Celery -------------------------------------------------------------------------------
REDIS_URL = env.secret("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# The queue the API sends operations to and the workers take them from. Deployments that share one
# Redis keep their work apart with a queue (or a database) each.
CELERY_TASK_DEFAULT_QUEUE = env.string("IMM_CELERY_QUEUE", "celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers a message whose worker died only after this many seconds; a duplicate delivered
# while the first run is alive is harmless (see operations.execution), so it can be short.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.integer("IMM_CELERY_VISIBILITY_TIMEOUT_SECONDS", 300, minimum=1)
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # the Operation row is the result
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

IMM_OPERATION_WAIT_SECONDS = env.number("IMM_OPERATION_WAIT_SECONDS", 60.0, minimum=0)
IMM_OPERATION_STALE_SECONDS = env.number("IMM_OPERATION_STALE_SECONDS", 60.0, minimum=1)
IMM_OPERATION_PROGRESS_INTERVAL_SECONDS = env.number("IMM_OPERATION_PROGRESS_INTERVAL_SECONDS", 1.0, minimum=0)
# An operation that hits an upstream outage (Kubernetes, object store, identity provider) is retried
# after 2, 4, 8 ... seconds, at most IMM_OPERATION_RETRY_MAX_SECONDS apart, IMM_OPERATION_MAX_ATTEMPTS
# times in all: the defaults ride out about three minutes of outage (an API server restart, an
# object-store failover) before the operation fails or rolls back.
IMM_OPERATION_MAX_ATTEMPTS = env.integer("IMM_OPERATION_MAX_ATTEMPTS", 8, minimum=1)
IMM_OPERATION_RETRY_MAX_SECONDS = env.number("IMM_OPERATION_RETRY_MAX_SECONDS", 60.0, minimum=0.1)
# The Operation row outlives its Celery message: a broker restart without persistence loses queued
# and unacknowledged messages. A periodic task sends the message again for any operation that has
# waited PENDING, or RUNNING without a heartbeat, for longer than this (re-sending is harmless: a
# run claims the row by compare-and-set). Keep it above IMM_OPERATION_RETRY_MAX_SECONDS and
# IMM_OPERATION_STALE_SECONDS, or live retries are sent twice.
IMM_OPERATION_REQUEUE_AFTER_SECONDS = env.number("IMM_OPERATION_REQUEUE_AFTER_SECONDS", 300.0, minimum=1)
# What an operation stores as its result is shown by every `GET /tasks` (up to 200 rows): a result
# larger than this is shortened (long strings cut, long lists cut to their first items, marked
# `truncated`) or, if still too large, replaced by its size. Error descriptions are cut too.
IMM_OPERATION_RESULT_MAX_BYTES = env.integer("IMM_OPERATION_RESULT_MAX_BYTES", 8192, minimum=1024)

IMM_READINESS_TIMEOUT_SECONDS = env.number("IMM_READINESS_TIMEOUT_SECONDS", 3.0, minimum=0.1)

# --- REST framework and OpenAPI ---------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_RENDERER_CLASSES": [
        "inferencemgmt.api.renderers.ImmJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["inferencemgmt.api.parsers.BoundedJSONParser"],
    # JSON whatever `Accept` says, and a body without a Content-Type is JSON (as the original).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "inferencemgmt.api.negotiation.JSONFallbackNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.RobotTokenAuthentication",
        "inferencemgmt.auth.authentication.OIDCTokenAuthentication",
        "inferencemgmt.auth.authentication.ConsoleSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["inferencemgmt.api.permissions.IsAuthenticatedIdentity"],
    "EXCEPTION_HANDLER": "inferencemgmt.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "inferencemgmt.api.schema.ImmAutoSchema",
    "UNAUTHENTICATED_USER": None,
    "UNICODE_JSON": False,
    "COMPACT_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Inference Model Manager API",
    "DESCRIPTION": "Multi-tenant control plane for AI inference endpoints on Kubernetes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["inferencemgmt.api.schema.documented_paths_without_trailing_slash"],
    # Enums stay inline where they are used: the same key (`status`, `state`) holds different value
    # sets on different routes (envelope words, endpoint status words, task and upload states), and
    # the default hook's shared enum components would collide on those names.
    "POSTPROCESSING_HOOKS": [],
    # The shared base views' docstrings describe code, not routes: never an operation's description.
    "GET_LIB_DOC_EXCLUDES": "inferencemgmt.api.views.schema_doc_excludes",
}

# --- Logging ----------------------------------------------------------------------------------------
LOG_LEVEL = env.choice("DJANGO_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), "INFO")
# Installs the log redaction (inferencemgmt.requestlog) for the whole process, then applies LOGGING.
LOGGING_CONFIG = "inferencemgmt.requestlog.configure_logging"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "inferencemgmt.requestlog.RequestIdFilter"},
        "redact": {"()": "inferencemgmt.requestlog.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # urllib3 logs full URLs and the kubernetes client can log headers at DEBUG.
        "urllib3": {"level": "WARNING"},
        "kubernetes": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
    },
}

# --- Metrics (Prometheus) --------------------------------------------------------------------------
# Every process counts requests, upstream calls, operations and reconciles (inferencemgmt/metrics.py).
# Off: no middleware and no recording on the request path (the benchmark's baseline).
IMM_METRICS_ENABLED = env.boolean("IMM_METRICS_ENABLED", True)
if IMM_METRICS_ENABLED:
    MIDDLEWARE.insert(1, "inferencemgmt.metrics.MetricsMiddleware")
# `GET /metrics` answers platform admins and a scraper holding this bearer token (set
# IMM_METRICS_SCRAPE_TOKEN_FILE to a mounted secret; empty: admins only).
IMM_METRICS_SCRAPE_TOKEN = env.secret("IMM_METRICS_SCRAPE_TOKEN", "")
# The worker and the controller serve their metrics on this port (0: not served) and address (the
# Helm chart sets 0.0.0.0 so that Prometheus reaches the pod).
IMM_METRICS_PORT = env.integer("IMM_METRICS_PORT", 0, minimum=0)
IMM_METRICS_ADDRESS = env.string("IMM_METRICS_ADDRESS", "127.0.0.1")
# The Prometheus that scrapes the serving pods: endpoint traffic charts query it as the platform
# (`GET /tenants/<t>/endpoints/<e>/metrics`). Empty: those answer 503 `metrics_not_configured`.
PROMETHEUS_URL = env.string("PROMETHEUS_URL", "").rstrip("/")
PROMETHEUS_CA_FILE = env.existing_file("PROMETHEUS_CA_FILE", "")
PROMETHEUS_BEARER_TOKEN = env.secret("PROMETHEUS_BEARER_TOKEN", "")
PROMETHEUS_TIMEOUT_SECONDS = env.number("PROMETHEUS_TIMEOUT_SECONDS", 5.0, minimum=0.1)

# --- Tenants ----------------------------------------------------------------------------------------
# Value of the namespace label `created_by` that marks a tenant (kept from the original IMM).
PLATFORM_ADMIN_LABEL = env.string("PLATFORM_ADMIN_LABEL", "platform_admin")
# Where the platform's own objects live: the inference TLS secret each tenant gets a copy of.
IMM_SYSTEM_NAMESPACE = env.string("IMM_SYSTEM_NAMESPACE", "imm-system")
IMM_INFERENCE_TLS_SECRET = env.string("IMM_INFERENCE_TLS_SECRET", "tls-secret")
# The ingress controller's namespace: the only one besides the tenant's own whose pods may reach it.
IMM_INGRESS_NAMESPACE = env.string("IMM_INGRESS_NAMESPACE", "ingress-nginx")
# How long tenant deletion (and a rolled-back creation) waits for the namespace to be gone.
IMM_NAMESPACE_DELETE_TIMEOUT_SECONDS = env.number("IMM_NAMESPACE_DELETE_TIMEOUT_SECONDS", 120.0, minimum=1)

# --- Robots (tenant service accounts) ---------------------------------------------------------------
# The longest lifetime a robot token may be asked for (Kubernetes' TokenRequest minimum is 10 minutes).
IMM_ROBOT_TOKEN_MAX_SECONDS = env.integer("IMM_ROBOT_TOKEN_MAX_SECONDS", 24 * 3600, minimum=600)
# The audience robot tokens are bound to: such a token is refused by the Kubernetes API itself (its
# audience is not the API server's) and accepted only where a TokenReview names this audience.
IMM_ROBOT_TOKEN_AUDIENCE = env.string("IMM_ROBOT_TOKEN_AUDIENCE", "inference-model-manager")
# How long a TokenReview's answer is remembered per token: a deleted robot's token is refused within this.
IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS = env.number("IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS", 10.0, minimum=0)

# --- Models and uploads -----------------------------------------------------------------------------
# Address clients reach the object store at, for presigned direct-upload URLs (empty: S3_ENDPOINT_URL).
S3_PUBLIC_ENDPOINT_URL = env.string("S3_PUBLIC_ENDPOINT_URL", "")
# How long "may this user act in this tenant" (a SelfSubjectAccessReview) is remembered per user,
# groups and tenant: an upload sends a part every few seconds, and RBAC changes rarely.
IMM_MODEL_ACCESS_CACHE_SECONDS = env.number("IMM_MODEL_ACCESS_CACHE_SECONDS", 10.0, minimum=0)
# Direct uploads: lifetime of a presigned part URL, and the part size used when the client names none.
IMM_UPLOAD_URL_EXPIRY_SECONDS = env.integer("IMM_UPLOAD_URL_EXPIRY_SECONDS", 3600, minimum=60)
IMM_UPLOAD_PART_BYTES = env.integer("IMM_UPLOAD_PART_BYTES", 64 * 1024 * 1024, minimum=5 * 1024 * 1024)
# Unfinished multipart uploads older than this are aborted by a periodic task (their parts use storage).
IMM_UPLOAD_MAX_AGE_HOURS = env.number("IMM_UPLOAD_MAX_AGE_HOURS", 24.0, minimum=0.01)
# --- Audit trail and usage ledger --------------------------------------------------------------------
# Every mutating API and console request leaves one record (audit/actions.py); records older than the
# retention are purged by a periodic task. Turning auditing off is for benchmarks only.
IMM_AUDIT_ENABLED = env.boolean("IMM_AUDIT_ENABLED", True)
IMM_AUDIT_RETENTION_DAYS = env.number("IMM_AUDIT_RETENTION_DAYS", 365.0, minimum=1)
IMM_AUDIT_PURGE_INTERVAL_SECONDS = env.number("IMM_AUDIT_PURGE_INTERVAL_SECONDS", 3600.0, minimum=10)
IMM_AUDIT_EXPORT_MAX_ROWS = env.integer("IMM_AUDIT_EXPORT_MAX_ROWS", 100_000, minimum=1)
# One usage row per tenant per sample; a gap longer than IMM_USAGE_MAX_GAP_SAMPLES intervals (the
# sampler was down) counts as nothing used rather than as the last sample stretched over the outage.
IMM_USAGE_SAMPLE_INTERVAL_SECONDS = env.number("IMM_USAGE_SAMPLE_INTERVAL_SECONDS", 300.0, minimum=1)
IMM_USAGE_MAX_GAP_SAMPLES = env.number("IMM_USAGE_MAX_GAP_SAMPLES", 3.0, minimum=1)
IMM_USAGE_RETENTION_DAYS = env.number("IMM_USAGE_RETENTION_DAYS", 400.0, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "operations-requeue-stalled": {
        "task": "operations.requeue_stalled",
        "schedule": env.number("IMM_OPERATION_REQUEUE_INTERVAL_SECONDS", 60.0, minimum=1),
    },
    "tenants-rotate-old-credentials": {
        "task": "tenants.rotate_old_credentials",
        "schedule": IMM_STORE_KEY_ROTATION_CHECK_SECONDS,
    },
    "models-abort-stale-uploads": {
        "task": "models.abort_stale_uploads",
        "schedule": env.number("IMM_UPLOAD_REAP_INTERVAL_SECONDS", 3600.0, minimum=10),
    },
    "audit-purge": {"task": "audit.purge", "schedule": IMM_AUDIT_PURGE_INTERVAL_SECONDS},
    "usage-sample": {"task": "usage.sample", "schedule": IMM_USAGE_SAMPLE_INTERVAL_SECONDS},
    "usage-purge": {"task": "usage.purge", "schedule": IMM_AUDIT_PURGE_INTERVAL_SECONDS},
}
# Model import from URLs: private, loopback and link-local addresses are refused unless allowed
# (a tenant could otherwise make the worker fetch cluster-internal services into their bucket).
IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES = env.boolean("IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES", False)
IMM_MODEL_IMPORT_TIMEOUT_SECONDS = env.number("IMM_MODEL_IMPORT_TIMEOUT_SECONDS", 30.0, minimum=1)
# Bounds of an archive extraction (an archive is a file from a tenant: a few hundred bytes can
# unpack to gigabytes or carry megabyte-long names). An archive that exceeds one is refused whole.
IMM_ARCHIVE_MAX_MEMBERS = env.integer("IMM_ARCHIVE_MAX_MEMBERS", 10000, minimum=1)
IMM_ARCHIVE_MAX_NAME_LENGTH = env.integer("IMM_ARCHIVE_MAX_NAME_LENGTH", 1024, minimum=1)
IMM_ARCHIVE_MAX_BYTES = env.integer("IMM_ARCHIVE_MAX_BYTES", 100 * 1024**3, minimum=1)
IMM_ARCHIVE_MAX_RATIO = env.number("IMM_ARCHIVE_MAX_RATIO", 100.0, minimum=1)

# --- Security headers (console) ---------------------------------------------------------------------
# The console runs only its own static scripts and styles; the browser uploads straight to the object
# store, so its origin (or IMM_CONSOLE_UPLOAD_ORIGINS behind a public S3 host) may be fetched, and the
# login form posts to the identity provider.
MIDDLEWARE.append("inferencemgmt.securityheaders.ContentSecurityPolicyMiddleware")
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HSTS only where the site is served over TLS (a browser would otherwise refuse plain-HTTP dev sites).
SECURE_HSTS_SECONDS = env.integer("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
_UPLOAD_URL = S3_PUBLIC_ENDPOINT_URL or S3_ENDPOINT_URL
IMM_CONSOLE_UPLOAD_ORIGINS = env.string_list(
    "IMM_CONSOLE_UPLOAD_ORIGINS",
    ["{uri.scheme}://{uri.netloc}".format(uri=urlsplit(_UPLOAD_URL))] if _UPLOAD_URL else [],
)
IMM_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        " ".join(["connect-src 'self'", *IMM_CONSOLE_UPLOAD_ORIGINS]),
        " ".join(["form-action 'self'", OIDC_ISSUER]).strip(),
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
# The console's own stylesheet and script (no CDN: the CSP above allows only 'self').
STATICFILES_DIRS = [BASE_DIR / "static"]
