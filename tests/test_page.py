"""What a page carries: cursor, token, the timestamp div and the script tag."""
from __future__ import annotations

import re
import time

import pytest
from django.template import Context, Template, TemplateSyntaxError

from serverpush.tokens import read_token

pytestmark = pytest.mark.django_db


def test_the_cursor_is_taken_before_the_view_runs(memory_log, browser_client, monkeypatch):
    from tests.testapp import views

    seen = {}
    real = views.page

    def slow_page(request, title="page"):
        seen["view_started_ms"] = time.time_ns() // 1_000_000
        return real(request, title)

    monkeypatch.setattr(views, "page", slow_page)
    html = browser_client.get("/t/hello-fields/").content.decode()
    cursor = re.search(r'data-cursor="t(\d+)"', html).group(1)
    assert int(cursor) <= seen["view_started_ms"]


def test_the_timestamp_div_of_the_original_holds_the_cursor(browser_client):
    html = browser_client.get("/t/hello-fields/").content.decode()
    div = re.search(r'<div id="generated_timestamp" style="display:none">\s*(\S+)\s*</div>', html).group(1)
    assert div == re.search(r'data-cursor="([^"]*)"', html).group(1)


def test_the_token_names_the_page_and_its_user(user_client):
    client = user_client("alice")
    html = client.get("/t/hello-fields/").content.decode()
    token = read_token(re.search(r'data-token="([^"]*)"', html).group(1))
    assert token.path == "/t/hello-fields/" and token.user_pk == str(client.user.pk) and token.session


def test_the_script_tag_loads_the_vendored_client_and_configures_itself(browser_client, settings):
    settings.SERVERPUSH_URL = "https://push.example.com"
    html = browser_client.get("/t/hello-fields/").content.decode()
    assert '<script src="/static/serverpush/vendor/socket.io.min.js"></script>' in html
    tag = re.search(r'<script src="/static/serverpush/serverpush.js"[^>]*>', html).group(0)
    assert 'data-url="https://push.example.com"' in tag and f'data-port="{settings.SERVERPUSH_PORT}"' in tag


def test_the_static_files_exist_where_the_tag_points():
    from django.contrib.staticfiles import finders

    assert finders.find("serverpush/serverpush.js") and finders.find("serverpush/vendor/socket.io.min.js")


def test_the_tag_explains_a_missing_request(rf):
    with pytest.raises(TemplateSyntaxError, match="context_processors.request"):
        Template("{% load serverpush %}{% serverpush_script %}").render(Context({}))
