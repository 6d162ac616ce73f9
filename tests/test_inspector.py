"""The staff inspector: what it shows of a real push server, who may see it, and live in a browser."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.conftest import ROOT, render, wait_until
from tests.test_browser import new_context, open_live, sign_in  # noqa: F401 - fixtures
from tests.testapp.models import Note

TIMEOUT = 10_000  # ms
URL = "/admin/serverpush/"


@pytest.fixture
def staff_client(django_user_model):
    user = django_user_model.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_staff_see_each_page_its_specs_entries_and_problems(push_server, listeners, browser_client, staff_client):
    listeners().connect(push_server, render(browser_client, "/t/bad-spec/"))
    Note.objects.create(title="routed")
    wait_until(lambda: "testapp.note" in staff_client.get(URL).content.decode(), what="the entry in the inspector")
    html = staff_client.get(URL).content.decode()
    assert "/t/bad-spec/" in html and "tests.testapp.views.bad_spec" in html  # the page and its view
    assert "<td>fine</td>" in html  # its good spec
    assert "spec_error" in html and "key &#x27;model&#x27; is &#x27;testapp.Nope&#x27;" in html  # the bad one, named
    assert "ready" in html
    fragment = staff_client.get(URL, {"fragment": "1"})
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()


@pytest.mark.django_db
def test_others_are_sent_to_the_admin_login(django_user_model):
    assert Client().get(URL).status_code == 302
    user = django_user_model.objects.create_user("not-staff")
    client = Client()
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.get(URL, {"fragment": "1"}).status_code == 302


@pytest.mark.django_db
def test_a_node_that_refuses_this_process_says_what_to_change(start_push_server, staff_client, settings):
    server = start_push_server(settings={"SERVERPUSH_METRICS_ALLOWED": ["192.0.2.0/24"]})
    settings.SERVERPUSH_NODES = [server.url]
    assert "not in its SERVERPUSH_METRICS_ALLOWED" in staff_client.get(URL).content.decode()


def test_the_demo_inspector_is_live_for_staff_and_refused_to_others(demo, new_context):
    name, password = f"admin-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings", "DEMO_DB": str(demo.db), "DJANGO_SUPERUSER_PASSWORD": password}
    subprocess.run([sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", name, "--email", "a@example.com"], cwd=ROOT, env=env, check=True, capture_output=True)

    visitor = new_context()
    sign_in(demo, visitor, f"visitor-{uuid.uuid4().hex[:6]}")
    refused = visitor.new_page()
    refused.goto(demo.url + URL)
    assert "/admin/login/" in refused.url  # a signed-in visitor who is not staff sees the admin's login

    staff = new_context()
    page = staff.new_page()
    page.goto(demo.url + URL)
    page.fill("#id_username", name)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    expect(page.locator(".serverpush-node h2")).to_contain_text("ready", timeout=TIMEOUT)

    marker = f"/watch/"
    other = open_live(demo, new_context(), marker)
    expect(page.locator(".serverpush-pages")).to_contain_text("demo.feature_views.watch", timeout=TIMEOUT)  # the inspector follows, without a reload
    other.close()
