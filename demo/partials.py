"""Template partials for the demo and the tests: ``{% partialdef %}`` and ``"items.html#item"``.

They are part of Django from 6.0. On Django 5.2, django-template-partials brings the
same tags and the same ``template#partial`` names, made builtins so templates need no
``{% load %}`` and read the same on both (``pip install -e ".[demo]"`` installs it on
Python 3.11, where pip picks Django 5.2; Django 6 needs Python 3.12).
"""
from __future__ import annotations

from typing import Any

import django
from django.core.exceptions import ImproperlyConfigured


def enable(installed_apps: list[str], templates: list[dict[str, Any]]) -> None:
    """Add django-template-partials to these settings on a Django without partials."""
    if django.VERSION >= (6, 0):
        return
    try:
        import template_partials  # noqa: F401
    except ImportError:
        raise ImproperlyConfigured('The demo\'s templates use template partials: on Django 5.2 install them with pip install "django-template-partials>=25.3", or use Django 6.0') from None
    installed_apps.append("template_partials")
    for engine in templates:
        engine.setdefault("OPTIONS", {}).setdefault("builtins", []).append("template_partials.templatetags.partials")
