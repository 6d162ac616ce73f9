"""Settings of the demo: the embedded log (or Redis, with SERVERPUSH_LOG), SQLite."""
import os
from pathlib import Path

from demo import partials

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "serverpush-demo-not-secret")
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DEMO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "serverpush",
    "demo",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "serverpush.middleware.ServerPushMiddleware",
]
ROOT_URLCONF = "demo.urls"
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
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", BASE_DIR / "demo.sqlite3"),
        "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DEMO_STATIC_ROOT")  # deploy/docker-compose.yml: collected for nginx
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGIN_URL = "/login/"

SERVERPUSH_PORT = int(os.environ.get("SERVERPUSH_PORT", 8013))
SERVERPUSH_NOTIFIER_PORT = int(os.environ.get("SERVERPUSH_NOTIFIER_PORT", 8014))
SERVERPUSH_GLOBALS = ()
# Where pages find the push server (None: beside the page, or its own origin under uvicorn).
SERVERPUSH_URL = os.environ.get("SERVERPUSH_URL") or None
# "memory" (embedded), or a Redis URL to run the demo on Redis: SERVERPUSH_LOG=redis://127.0.0.1:6379/0
SERVERPUSH_LOG = os.environ.get("SERVERPUSH_LOG", "memory")
# A page that must reload after a push-server restart does so within 2 s, not 10: the
# Outage page is watched by someone waiting for it.
SERVERPUSH_RESYNC_JITTER = 2
# Every demo page connects, so a message reaches all of a user's tabs (the Messages page).
SERVERPUSH_MESSAGES = True
# The Handlers page: client-to-server handlers, as in django-ws.
SERVERPUSH_HANDLERS = {
    "default": "demo.ws_handlers.RandomCounter",
    "shout": "demo.ws_handlers.Shout",
}
