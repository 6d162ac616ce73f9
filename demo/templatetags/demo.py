"""``{% load demo %}``: each demo page shows the code that makes it live, read from the files.

``{% python_source "demo.views.index" "demo.views.index_update" %}`` and
``{% template_source "demo/index.html" %}`` print the current source, so what a
page shows cannot drift from what runs. What makes a page live is marked.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from django import template
from django.template.loader import get_template
from django.utils.html import escape
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
ROOT = Path(__file__).resolve().parents[2]  # the repository: paths are shown from there

# What makes a page live: the bindings, serverpush's tags, the update functions and
# the keys of their specs.
LIVE = re.compile(
    r"(data-serverpush-[\w-]+|\{% serverpush_\w+.*?%\}|\w+_update\b|serverpush\.\w+"
    r"|(?:&quot;|&#x27;)(?:template|data|vary|serializer|params|name|model)(?:&quot;|&#x27;))"
)
# The page's own code panel: shown on the page, left out of the template it shows.
CODE_BLOCK = re.compile(r"\{% block code %\}.*?\{% endblock %\}\n?", re.DOTALL)


@register.simple_tag
def python_source(*paths: str) -> SafeString:
    """The source of these functions (dotted paths), one after the other, as in their module."""
    objects = [import_string(path) for path in paths]
    module = inspect.getsourcefile(inspect.unwrap(objects[0]))  # a decorated view: its own file
    code = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    return _figure(_relative(module), code, "python")


@register.simple_tag
def template_source(name: str) -> SafeString:
    """The file of the template ``name``, but for its ``code`` block (this panel)."""
    path = get_template(name).origin.name
    return _figure(_relative(path), CODE_BLOCK.sub("", Path(path).read_text(encoding="utf-8")).rstrip(), "django")


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return Path(path).name


def _figure(path: str, code: str, language: str) -> SafeString:
    marked = LIVE.sub(r"<mark>\1</mark>", escape(code))
    return mark_safe(f'<figure class="source"><figcaption>{escape(path)}</figcaption><pre><code class="{language}">{marked}</code></pre></figure>')
