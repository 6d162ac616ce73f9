"""``{% load serverpush %}``: the browser client and its configuration, page and watch tokens.

- ``{% serverpush_script %}``: the script tags, configured for this page (the client, its
  declarative bindings ``live.js``, watches and handlers);
- ``{% serverpush_token %}``: the page token as a quoted string, ``var token = {% serverpush_token %};``;
- ``{% serverpush_watch obj_or_queryset %}``: a quoted watch token for ``serverpush.subscribe(...)``.

The two token tags make the page live (it gets a token and a cursor) even if its
view has no update function; put them before ``{% serverpush_script %}``.
"""
from __future__ import annotations

import json
from typing import Any

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from serverpush.client import mark_live, page_context
from serverpush.tabs import new_tab
from serverpush.watch import make_watch_token, watch_of

register = template.Library()
_SCRIPT_TOKEN = "_serverpush_script_token"


@register.simple_tag(takes_context=True)
def serverpush_script(context: template.Context) -> str:
    """Script tags of the socket.io client and ``serverpush.js``, configured for this page."""
    request = _request(context, "serverpush_script")
    values: dict[str, Any] = dict(page_context(request))
    token = str(values["serverpush_token"])
    setattr(request, _SCRIPT_TOKEN, token)
    if token:  # the page's own requests name it, so its changes are not echoed to it (serverpush.tabs)
        values["tab_key"], values["tab_id"] = new_tab()
    return render_to_string("serverpush/script.html", values)


@register.simple_tag(takes_context=True)
def serverpush_token(context: template.Context) -> SafeString:
    """The page token as a JS string literal (also a valid quoted HTML attribute value)."""
    request = _request(context, "serverpush_token")
    mark_live(request)
    return mark_safe(json.dumps(str(page_context(request)["serverpush_token"])))


@register.simple_tag(takes_context=True)
def serverpush_watch(context: template.Context, target: Any, fields: str | None = None) -> SafeString:
    """A quoted watch token: ``serverpush.subscribe({% serverpush_watch item %}, {update: ...})``.

    ``target`` is an object, a queryset, a model class or ``"app_label.Model"``;
    ``fields="title,done"`` sends only those fields (the pk always).
    """
    request = _request(context, "serverpush_watch")
    if getattr(request, _SCRIPT_TOKEN, None) == "":
        raise template.TemplateSyntaxError(
            "{% serverpush_watch %} comes after {% serverpush_script %}, which has already rendered "
            "this page without a token: move the watch tag above the script tag."
        )
    mark_live(request)
    return mark_safe(json.dumps(make_watch_token(watch_of(target, request, fields))))


def _request(context: template.Context, tag: str) -> HttpRequest:
    request = context.get("request")
    if request is None:
        raise template.TemplateSyntaxError(
            f"{{% {tag} %}} needs 'request' in the context: add "
            "'django.template.context_processors.request' to TEMPLATES' context_processors."
        )
    return request
