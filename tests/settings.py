"""Settings of the test project: the testapp and the demo, on a SQLite file shared with push servers."""
import os
import tempfile

from demo import partials
from tests.ports import free_port

SECRET_KEY = "serverpush-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.messages",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "serverpush",
    "demo",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "serverpush.middleware.ServerPushMiddleware",
]
ROOT_URLCONF = "tests.urls"
_DB = os.environ.setdefault("SERVERPUSH_TEST_DB", os.path.join(tempfile.mkdtemp(prefix="serverpush-"), "test.sqlite3"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _DB,
        "TEST": {"NAME": _DB},
        "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "serverpush.client.context_processor",
            ]
        },
    }
]
partials.enable(INSTALLED_APPS, TEMPLATES)
STATIC_URL = "/static/"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French")]
# Free ports per test run, exported so the push servers the tests start agree.
SERVERPUSH_PORT = int(os.environ.setdefault("SERVERPUSH_PORT", str(free_port())))
SERVERPUSH_NOTIFIER_PORT = int(os.environ.setdefault("SERVERPUSH_NOTIFIER_PORT", str(free_port())))
# SERVERPUSH_TEST_LOG=redis://127.0.0.1:6379/15 runs the suite on a Redis log.
SERVERPUSH_LOG = os.environ.get("SERVERPUSH_TEST_LOG", "memory")
# This run's processes share a spool of unreported Redis losses, and no other run's.
SERVERPUSH_REDIS_SPOOL_DIR = os.path.join(os.path.dirname(_DB), "spool")
SERVERPUSH_GLOBALS = tuple(filter(None, os.environ.get("SERVERPUSH_TEST_GLOBALS", "").split(",")))
# Client-to-server handlers of tests/test_handlers.py ("default" as in the django-ws README).
SERVERPUSH_HANDLERS = {
    "default": "tests.testapp.ws_handlers.RandomCounter",
    "opener": "tests.testapp.ws_handlers.Opener",
    "whoami": "tests.testapp.ws_handlers.WhoAmI",
    "broken": "tests.testapp.ws_handlers.Broken",
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"serverpush": {"handlers": ["console"], "level": os.environ.get("SERVERPUSH_LOG_LEVEL", "INFO")}},
}

# A push server started by a test may get its own settings: JSON in this variable.
globals().update(__import__("json").loads(os.environ.get("SERVERPUSH_TEST_OVERRIDES", "{}")))
