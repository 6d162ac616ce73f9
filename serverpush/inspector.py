"""The inspector: a staff page showing, live, every push server, its pages, entries and problems.

Add it to the project's URLs, before the admin's own::

    path("admin/serverpush/", serverpush.inspector.view, name="serverpush_inspector"),
    path("admin/", admin.site.urls),

It reads each node's ``/serverpush/inspect`` (``SERVERPUSH_NODES``), so the Django
process must be allowed there (``SERVERPUSH_METRICS_ALLOWED``, loopback by default).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from serverpush import conf

TIMEOUT = 2.0  # seconds one node may take to answer


def node_urls() -> list[str]:
    """The push servers to show: ``SERVERPUSH_NODES``, or the one ``runserverpush`` runs by default."""
    nodes = conf.get("SERVERPUSH_NODES")
    if nodes is not None:
        return list(nodes)
    host = conf.get("SERVERPUSH_HOST")
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return [f"http://{host}:{conf.get('SERVERPUSH_PORT')}"]


def read_node(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/serverpush/inspect", timeout=TIMEOUT) as response:
            return {"url": url, **json.load(response)}
    except urllib.error.HTTPError as exc:
        reason = "this Django process is not in its SERVERPUSH_METRICS_ALLOWED" if exc.code == 403 else f"HTTP {exc.code}"
        return {"url": url, "error": reason}
    except (OSError, ValueError) as exc:
        return {"url": url, "error": f"no answer ({exc}); is `./manage.py runserverpush` running there?"}


@staff_member_required
def view(request: HttpRequest) -> HttpResponse:
    """The inspector page; ``?fragment=1`` is the part its script fetches again every two seconds."""
    context = {"nodes": [read_node(url) for url in node_urls()], "title": "serverpush: live pages"}
    if request.GET.get("fragment"):
        return render(request, "serverpush/inspector_nodes.html", context)
    from django.contrib import admin

    return render(request, "serverpush/inspector.html", {**admin.site.each_context(request), **context})
