"""The demo under ASGI: pages and push server on one origin, ``uvicorn demo.asgi:application``."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from serverpush.asgi import wrap  # noqa: E402

# Static files straight from the apps, as runserver serves them (DEBUG only; a real
# site serves them with its web server or WhiteNoise).
application = wrap(ASGIStaticFilesHandler(get_asgi_application()))
