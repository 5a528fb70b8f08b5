"""The one settings module: everything comes from the environment (django-environ).

Embedded defaults need no external service: SQLite and blobs under E2EE_DATA_DIR, a generated
secret key, and a filesystem Celery broker.
"""

import os
import secrets
from pathlib import Path

import environ


class _TrimmedFileMapping(environ.FileAwareMapping):
    """Values may come from files (SECRET_KEY_FILE=/run/secrets/…, Docker secrets); such files
    usually end in a newline, which must not become part of a key or a URL."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key).strip()


class _Env(environ.Env):
    ENVIRON = _TrimmedFileMapping()


env = _Env()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.str("E2EE_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
BLOB_DIR = Path(env.str("E2EE_BLOB_DIR", default=str(DATA_DIR / "blobs")))
# E2EE_BLOB_STORE=s3: blobs in an S3-compatible bucket (server.files.blobstore_s3) instead of
# BLOB_DIR. Keys may come from *_FILE; left empty, boto3's own chain (AWS_* env, roles) applies.
BLOB_STORE = env.str("E2EE_BLOB_STORE", default="local")
BLOB_S3 = {
    "ENDPOINT_URL": env.str("E2EE_S3_ENDPOINT_URL", default=""),
    "BUCKET": env.str("E2EE_S3_BUCKET", default=""),
    "REGION": env.str("E2EE_S3_REGION", default="us-east-1"),
    "ACCESS_KEY_ID": env.str("E2EE_S3_ACCESS_KEY_ID", default=""),
    "SECRET_ACCESS_KEY": env.str("E2EE_S3_SECRET_ACCESS_KEY", default=""),
    "PREFIX": env.str("E2EE_S3_PREFIX", default="blobs/"),
    "PART_SIZE": env.int("E2EE_S3_PART_SIZE", default=8 << 20),
    "CONCURRENCY": env.int("E2EE_S3_CONCURRENCY", default=2),
    "ADDRESSING_STYLE": env.str("E2EE_S3_ADDRESSING_STYLE", default="path"),
}


def _secret_key_from_data_dir() -> str:
    """Generate the secret key once, readable by the owner only, and reuse it on later starts."""
    path = DATA_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _secret_key_from_data_dir()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Behind a TLS-terminating proxy: E2EE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https makes
# Django trust the proxy's word that the request came over HTTPS; cookies then become secure and
# HSTS is sent. Only set it when the proxy overwrites that header on every request.
_proxy_ssl_header = env.list("E2EE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None
_behind_tls = SECURE_PROXY_SSL_HEADER is not None or env.bool("E2EE_TLS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _behind_tls
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if _behind_tls else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "server.core",
    "server.accounts",
    "server.files",
    "server.certificates",
    "server.e2ee",
    "server.audit",
    "server.sharing",
    "server.recovery",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "server.urls"
WSGI_APPLICATION = "server.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# Nextcloud clients call "/status.php" and "/ocs/v2.php/..." without trailing slashes.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides (the admin front page) come before the apps' templates.
        "DIRS": [BASE_DIR / "server" / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Keep each thread's connection, health-checked before reuse: PostgreSQL forks a backend per
# connection, and SQLite's open (with its WAL pragma) cost ~5% of a small WebDAV GET.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while another process writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing folder before collectstatic
# Serve app static files even before collectstatic ran (tests, a fresh checkout).
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "server.accounts.authentication.BasicAppPasswordAuthentication"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "e2ee-stack API",
    "DESCRIPTION": (
        "Nextcloud-compatible OCS endpoints. Every path also answers under /ocs/v1.php (HTTP 200, "
        "statuscode 100 on success); E2EE endpoints exist as api/v1 and api/v2."
    ),
    "VERSION": "0.1.0",
    "PREPROCESSING_HOOKS": ["server.openapi.normalise_paths"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
}

# Celery: the embedded default is a broker on the local filesystem, so the worker still runs as
# its own process with nothing to install; docker-compose points this at Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
_broker_dir = DATA_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    _broker_dir.mkdir(exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        # Broadcast (remote control) state too, else kombu writes ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.02,
    }
elif CELERY_BROKER_URL.startswith(("redis", "rediss")):
    # Unacknowledged signing tasks come back after 5 min; a restarted worker re-queues pending
    # orders at once anyway. A key prefix lets several stacks (tests) share one Redis.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
    if env.str("CELERY_BROKER_KEYPREFIX", default=""):
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env.str("CELERY_BROKER_KEYPREFIX")
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# The signing worker: `celery -A server.celery:app worker -Q hsm -c 1`, one task at a time.
# Audit checkpoints are signed with the CA key too, so they run there as well.
CELERY_TASK_ROUTES = {"certificates.*": {"queue": "hsm"}, "audit.checkpoint": {"queue": "hsm"}}
# Fetch the next signing task while one runs; unacknowledged ones survive a killed worker.
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Celery closes the DB connection around every task unless told to reuse it (reconnecting cost
# more than the signature); the signing task checks the connection itself before use.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE = {
    "e2ee-rollback-stale-locks": {"task": "e2ee.rollback_stale_locks", "schedule": 3600.0},
    "audit-checkpoint": {
        "task": "audit.checkpoint",
        "schedule": env.float("E2EE_AUDIT_CHECKPOINT_SECONDS", default=3600.0),
    },
}

# Certificate signing. E2EE_SIGNER: the CA backend of the signing worker, "software" (key file
# E2EE_CA_KEY_FILE) or "pkcs11". PKCS11_* belong in the worker's environment only: the web
# process has no module and no PIN. E2EE_SIGNING "worker" (default) queues every CSR for the
# worker; "inline" signs in the web process itself (software CA only; tests, development).
E2EE_SIGNER = env.str("E2EE_SIGNER", default="software")
E2EE_SIGNING = env.str("E2EE_SIGNING", default="worker")
E2EE_ISSUANCE_TIMEOUT = env.float("E2EE_ISSUANCE_TIMEOUT", default=10.0)  # seconds the view waits
PKCS11_MODULE = env.str("PKCS11_MODULE", default="")
PKCS11_TOKEN_LABEL = env.str("PKCS11_TOKEN_LABEL", default="")
PKCS11_PIN_FILE = env.str(
    "PKCS11_PIN_FILE", default=""
)  # the path only; the PIN is never read here
PKCS11_KEY_LABEL = env.str("PKCS11_KEY_LABEL", default="e2ee-ca")

# Ephemeral test stacks only (`e2ee-stack serve --ephemeral` sets it): the fault-injection
# endpoint answers instead of 404. Never set it on a server that holds real data.
E2EE_TESTKIT = env.bool("E2EE_TESTKIT", default=False)
E2EE_PRODUCT_NAME = env.str("E2EE_PRODUCT_NAME", default="e2ee-stack")
# The Nextcloud version we speak for; clients gate features on it.
E2EE_NEXTCLOUD_VERSION = (31, 0, 0, 0)
# The software CA key (embedded default); the HSM backend keeps it in a PKCS#11 token instead.
E2EE_CA_KEY_FILE = env.str("E2EE_CA_KEY_FILE", default=str(DATA_DIR / "keys" / "ca.key.pem"))
# Every WebDAV write asks these first (webdav.gates); the E2EE gate stages writes under locks.
WEBDAV_WRITE_GATES = ["webdav.e2ee.e2ee_write_gate"]
# What WebDAV readers see passes through these (webdav.reads); the E2EE filter shows the
# committed state of encrypted folders and their nc:e2ee-* properties.
WEBDAV_READ_FILTERS = ["webdav.e2ee.e2ee_read_filter"]
WEBDAV_BLOCK_SIZE = env.int("WEBDAV_BLOCK_SIZE", default=1024 * 1024)

# Containers (LOG_FORMAT=json) log JSON lines on stdout; interactive use logs text on stderr,
# which keeps management commands' stdout (printed passwords, exports) clean.
_log_format = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "server.core.logging.JSONLinesFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout" if _log_format == "json" else "ext://sys.stderr",
            "formatter": _log_format,
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"wsgidav": {"level": env.str("WSGIDAV_LOG_LEVEL", default="WARNING")}},
}
