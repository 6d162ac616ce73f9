"""live.js, keep.js and status.js in a real Chromium, without a push server.

Pages load the repository's scripts from a throwaway static server and get their
events through ``serverpush._handle``, the function the socket listeners call, so
every binding runs exactly as it does on a live page. The page-refresh page is served
anew on every GET (its version counts the fetches).
"""
from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
STATIC = "/serverpush_js/static/serverpush"
TIMEOUT = 5000  # ms, for every wait
DEAD_PORT = free_port()  # nothing listens: the page stays 'connecting' until a test says otherwise
TAB_KEY, TAB_ID = "the-key-of-this-tab-0123", "the-id-of-this-tab"

SCRIPTS = f"""
<div id="generated_timestamp" style="display:none">t1700000000000</div>
<script src="{STATIC}/vendor/socket.io.min.js"></script>
<script src="{STATIC}/serverpush.js" data-serverpush data-token="tok" data-url="http://127.0.0.1:{DEAD_PORT}"></script>
<script src="{STATIC}/watch.js"></script>
<script src="{STATIC}/vendor/idiomorph.min.js"></script>
<script src="{STATIC}/keep.js"></script>
<script src="{STATIC}/status.js"></script>
<script src="{STATIC}/live.js" data-serverpush-live data-tab-key="{TAB_KEY}" data-tab-id="{TAB_ID}"></script>
"""

BODIES = {
    "/fields.html": """
<div id="counter" data-serverpush-on="counter" data-serverpush-text="value">0</div>
<a id="link" href="/" data-serverpush-on="user" data-serverpush-attr="href:url title:name hidden:away">profile</a>
<div id="card" data-serverpush-on="user">
  <b data-serverpush-text="name"></b> from <i data-serverpush-text="profile.city"></i>
  <div id="inner" data-serverpush-on="counter"><span id="nested" data-serverpush-text="value">0</span></div>
</div>
<p id="greeting" data-serverpush-on="greeting" data-serverpush-text=""></p>
<input id="typing" value="alice" data-serverpush-on="user" data-serverpush-attr="value:name">
<input id="idle" value="alice" data-serverpush-on="user" data-serverpush-attr="value:name">
""",
    "/swap.html": """
<div id="panel" data-serverpush-on="panel" data-serverpush-swap>
  <h2>v1</h2><input id="q" value="server"><textarea id="notes">n1</textarea><input id="other" value="o1">
</div>
<section id="box" class="old" data-serverpush-on="box" data-serverpush-swap="outer"><input id="in-box" value="b1"></section>
""",
    "/list.html": """
<ul id="items" data-serverpush-on="item" data-serverpush-list>
  <li data-serverpush-key="1"><span class="text">one</span> <input class="edit" value="one"></li>
</ul>
<ul id="tasks" data-serverpush-on="task" data-serverpush-list="prepend">
  <template><li><span class="title" data-serverpush-text="title"></span><input type="checkbox" data-serverpush-attr="checked:done"></li></template>
</ul>
<ul id="inbox" data-serverpush-on="message" data-serverpush-list>
  <template><li data-serverpush-text="text"></li></template>
</ul>
""",
    "/status.html": """
<style>html[data-serverpush-state=live] #badge { color: rgb(0, 128, 0); }
       html[data-serverpush-state=reconnecting] #badge { color: rgb(200, 0, 0); }</style>
<p id="badge"><b id="state" data-serverpush-status></b> <span id="received" data-serverpush-status="received"></span>
  <span id="replayed" data-serverpush-status="replayed"></span> <span id="healed" data-serverpush-status="healed"></span></p>
""",
    "/typing.html": """
<form id="f"><input id="msg" name="msg"> <textarea name="notes"></textarea> <input type="checkbox" name="ok"></form>
""",
    "/forms.html": """
<form id="send" method="post" action="/fail" data-serverpush-submit><input id="text" name="text"><button id="go">Send</button></form>
""",
}

received: dict[str, Any] = {"posts": [], "refresh_gets": 0}


def page_html(body: str) -> str:
    return f'<!doctype html><html><head><meta charset="utf-8"><title>live</title><link rel="icon" href="data:,"></head><body>{body}{SCRIPTS}</body></html>'


def refresh_page() -> str:
    n = received["refresh_gets"]
    body = f'<p id="version">version {n}</p><ol>{"".join(f"<li>{i}</li>" for i in range(n))}</ol><input id="draft" value="">'
    return f'<!doctype html><html><head><meta charset="utf-8"><title>v{n}</title><link rel="icon" href="data:,"></head><body data-serverpush-on="board" data-serverpush-refresh>{body}{SCRIPTS}</body></html>'


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(REPO), **kwargs)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/refresh.html":
            received["refresh_gets"] += 1
            return self._send(200, refresh_page())
        if path in BODIES:
            return self._send(200, page_html(BODIES[path]))
        return super().do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        received["posts"].append({"path": self.path, "tab": self.headers.get("X-Serverpush-Tab"), "body": self.rfile.read(length).decode()})
        self._send(500 if self.path == "/fail" else 204, "")

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def open_page(browser: Browser, base_url: str) -> Iterator[Callable[[str], Page]]:
    contexts = []

    def open_(name: str) -> Page:
        context = browser.new_context()
        contexts.append(context)
        context.add_init_script("sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);")
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(base_url + name)
        page.wait_for_function("window.serverpush && serverpush.tab")
        return page

    yield open_
    for context in contexts:
        context.close()


def push(page: Page, name: str, data: Any, op: str = "update", pk: Any = 1, **extra: Any) -> None:
    """Deliver one ``serverpush`` event to the page, as the socket would."""
    message = {"name": name, "op": op, "model": "app.thing", "pk": pk, "data": data, "id": f"e:{pk}", "cursor": f"e:{pk}", "replay": False, **extra}
    page.evaluate("m => serverpush._handle('serverpush', m)", message)


def pushed_busy(page: Page, message: dict[str, Any]) -> str | None:
    """Deliver a ``board`` event; the body's aria-busy right after it, i.e. whether a refresh is due."""
    message = {"name": "board", "op": "update", "model": "app.thing", "data": None, "id": "e:x", "cursor": "e:x", "replay": False, **message}
    return page.evaluate("m => { serverpush._handle('serverpush', m); return document.body.getAttribute('aria-busy'); }", message)


def texts(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_text_and_attributes_follow_a_field_map_payload(open_page):
    page = open_page("/fields.html")
    page.fill("#typing", "bob is typing")  # focused and changed: a push must not touch it
    push(page, "counter", {"value": 5})
    assert page.inner_text("#counter") == "5" and page.inner_text("#nested") == "5"
    push(page, "user", {"name": "carol", "url": "/u/3", "away": True, "profile": {"city": "Oslo"}})
    link = page.locator("#link")
    assert [link.get_attribute(a) for a in ("href", "title", "hidden")] == ["/u/3", "carol", ""]
    assert texts(page, "#card b") == ["carol"] and page.inner_text("#card i") == "Oslo"
    assert page.inner_text("#nested") == "5"  # its own source is the counter, not the user
    assert page.input_value("#typing") == "bob is typing" and page.input_value("#idle") == "carol"
    push(page, "user", {"name": "carol", "url": "/u/3", "away": False, "profile": None})
    assert link.get_attribute("hidden") is None and page.inner_text("#card i") == ""
    push(page, "greeting", "Hey, carol!")
    assert page.inner_text("#greeting") == "Hey, carol!"
    assert page.errors == []


def test_a_swap_morphs_and_keeps_the_focused_input_its_value_and_its_caret(open_page):
    page = open_page("/swap.html")
    page.fill("#notes", "my own notes")  # changed, then left
    page.fill("#q", "typed text")
    page.evaluate("() => { const q = document.getElementById('q'); q.setSelectionRange(3, 5); window.q = q; }")
    push(page, "panel", '<h2>v2</h2><input id="q" value="server2"><textarea id="notes">n2</textarea><input id="other" value="o2">')
    assert page.inner_text("#panel h2") == "v2" and page.input_value("#other") == "o2"
    assert page.evaluate("""() => {
      const q = document.getElementById('q');
      return [q === window.q, document.activeElement === q, q.value, q.selectionStart, q.selectionEnd];
    }""") == [True, True, "typed text", 3, 5]
    assert page.input_value("#notes") == "my own notes"
    page.keyboard.type("!")  # the selection is where it was: typing replaces it
    assert page.input_value("#q") == "typ! text"
    page.focus("#other")  # in the field, not typed yet: its value does not move under the caret either
    push(page, "panel", '<h2>v3</h2><input id="q" value="server3"><textarea id="notes">n3</textarea><input id="other" value="o3">')
    assert page.inner_text("#panel h2") == "v3" and page.input_value("#other") == "o2" and page.input_value("#q") == "typ! text"

    page.fill("#in-box", "in the box")
    push(page, "box", '<section id="box" class="new" data-serverpush-on="box" data-serverpush-swap="outer"><input id="in-box" value="b2"><p>added</p></section>', pk=2)
    assert page.get_attribute("#box", "class") == "new" and page.inner_text("#box p") == "added"
    assert page.input_value("#in-box") == "in the box" and page.evaluate("document.activeElement.id") == "in-box"
    push(page, "box", '<section id="box" class="newer" data-serverpush-on="box" data-serverpush-swap="outer"></section>', pk=2)
    assert page.get_attribute("#box", "class") == "newer"  # still bound after its own swap
    assert page.errors == []


def test_a_list_adds_morphs_and_removes_server_rendered_items_by_key(open_page):
    page = open_page("/list.html")
    page.fill("#items li .edit", "one, being edited")
    push(page, "item", '<li data-serverpush-key="2"><span class="text">two</span></li>', op="create", pk=2)
    push(page, "item", '<li data-serverpush-key="2"><span class="text">two</span></li>', op="create", pk=2)  # replayed twice
    assert texts(page, "#items .text") == ["one", "two"]
    push(page, "item", '<li data-serverpush-key="1"><span class="text">ONE</span> <input class="edit" value="ONE"></li>', pk=1)
    assert texts(page, "#items .text") == ["ONE", "two"]
    assert page.input_value("#items li .edit") == "one, being edited" and page.evaluate("document.activeElement.className") == "edit"
    push(page, "item", '<li data-serverpush-key="3"><span class="text">three</span></li>', pk=3)  # an update of an unknown item adds it
    push(page, "item", None, op="create", pk=4)  # a serializer that failed: nothing to show
    push(page, "item", "<li>gone</li>", op="delete", pk=2)
    push(page, "item", None, op="delete", pk=99)  # never shown here
    assert page.evaluate("[...document.querySelectorAll('#items li')].map(li => li.dataset.serverpushKey)") == ["1", "3"]
    assert page.errors == []


def test_a_list_of_field_payloads_fills_its_template(open_page):
    page = open_page("/list.html")
    push(page, "task", {"title": "first", "done": False}, op="create", pk=1)
    push(page, "task", {"title": "second", "done": True}, op="create", pk=2)
    assert texts(page, "#tasks .title") == ["second", "first"]  # prepended
    push(page, "task", {"title": "first, renamed", "done": True}, pk=1)
    assert texts(page, "#tasks .title") == ["second", "first, renamed"]
    assert page.evaluate("[...document.querySelectorAll('#tasks input')].map(i => i.checked)") == [True, True]
    push(page, "task", {"pk": 2}, op="delete", pk=2)
    assert texts(page, "#tasks .title") == ["first, renamed"]
    push(page, "message", {"text": "hello"}, op="message", pk=None, id="m:1")
    assert texts(page, "#inbox li") == ["hello"]
    assert page.errors == []


def test_the_connection_state_is_an_attribute_css_can_style(open_page):
    page = open_page("/status.html")
    state = lambda: page.evaluate("document.documentElement.dataset.serverpushState")  # noqa: E731
    assert state() == "connecting" and page.inner_text("#state") == "connecting"
    page.evaluate("serverpush._handle('serverpush_ready', {cursor: 'e:1', replayed: 3})")
    assert state() == "live" and page.eval_on_selector("#badge", "b => getComputedStyle(b).color") == "rgb(0, 128, 0)"
    push(page, "anything", {}, pk=1)
    push(page, "anything", {}, pk=2)
    page.evaluate("serverpush._handle('disconnect', 'transport close')")
    assert state() == "reconnecting" and page.eval_on_selector("#badge", "b => getComputedStyle(b).color") == "rgb(200, 0, 0)"
    page.evaluate("serverpush._handle('serverpush_ready', {cursor: 'e:5', replayed: 1})")
    assert state() == "live"
    # The server healed the page instead of replaying (its log restarted).
    page.evaluate("serverpush._handle('serverpush_resynced', {code: 'log_restarted', cursor: 'f:1', healed: 2})")
    assert state() == "healed"
    assert [page.inner_text(s) for s in ("#state", "#received", "#replayed", "#healed")] == ["healed", "2", "4", "1"]
    page.evaluate("serverpush._handle('disconnect', 'transport close')")
    page.evaluate("serverpush._handle('serverpush_ready', {cursor: 'f:2', replayed: 0})")
    assert state() == "live"  # a plain resume is not a heal
    page.evaluate("serverpush._handle('connect_error', {data: {code: 'token_invalid', message: 'altered'}})")
    assert state() == "refused" and page.inner_text("#state") == "refused"


def test_a_resync_reload_waits_while_the_user_types_and_gives_back_what_was_typed(open_page):
    page = open_page("/typing.html")
    page.fill("textarea", "kept too")
    page.check("input[name=ok]")
    page.fill("#msg", "half a sentence")
    page.evaluate("document.getElementById('msg').setSelectionRange(4, 4)")
    page.evaluate("serverpush._handle('serverpush_refresh', {code: 'log_gap', message: 'the log lost entries'})")
    expect(page.locator("html")).to_have_attribute("data-serverpush-state", "reloading")
    page.keyboard.type("ish")  # still the same page: nothing typed is lost
    assert page.evaluate("sessionStorage.loads") == "1" and page.input_value("#msg") == "halfish a sentence"
    with page.expect_navigation():
        page.evaluate("document.getElementById('msg').blur()")
    page.wait_for_function("window.serverpush && serverpush.tab")
    assert page.evaluate("sessionStorage.loads") == "2"
    assert page.input_value("#msg") == "halfish a sentence" and page.input_value("textarea") == "kept too"
    assert page.is_checked("input[name=ok]")


def test_a_resync_with_no_field_in_use_reloads_at_once(open_page):
    page = open_page("/typing.html")
    with page.expect_navigation():
        page.evaluate("serverpush._handle('serverpush_refresh', {code: 'log_gap', message: 'the log lost entries'})")
    page.wait_for_function("window.serverpush && serverpush.tab")
    assert page.evaluate("sessionStorage.loads") == "2" and page.input_value("#msg") == ""


def test_a_form_keeps_what_was_typed_until_the_server_took_it(open_page):
    page = open_page("/forms.html")
    page.fill("#text", "an important line")
    page.click("#go")
    expect(page.locator("#send")).to_have_attribute("data-serverpush-error", "Not sent: the server answered 500 Internal Server Error. What you typed is kept; try again.")
    assert page.input_value("#text") == "an important line"
    page.evaluate("document.getElementById('send').action = '/accept'")
    page.click("#go")
    expect(page.locator("#text")).to_have_value("")
    expect(page.locator("#send")).not_to_have_attribute("data-serverpush-error", "")
    assert page.evaluate("sessionStorage.loads") == "1"  # posted in the background
    assert [(p["path"], p["tab"], p["body"]) for p in received["posts"][-2:]] == [("/fail", TAB_KEY, "text=an+important+line"), ("/accept", TAB_KEY, "text=an+important+line")]


def test_a_page_refresh_is_one_fetch_for_many_changes_and_none_for_its_own(open_page):
    page = open_page("/refresh.html")
    start = received["refresh_gets"]
    page.fill("#draft", "still typing")
    page.evaluate("for (let i = 0; i < 20; i++) serverpush._handle('serverpush', {name: 'board', op: 'update', model: 'a.b', pk: i, data: null, id: 'e:' + i, cursor: 'e:' + i, replay: false})")
    expect(page.locator("#version")).to_have_text(f"version {start + 1}")
    expect(page.locator("body")).not_to_have_attribute("aria-busy", "true")
    # A change this tab's own request made: it refreshed itself, so nothing is scheduled.
    assert pushed_busy(page, {"pk": 30, "tab": TAB_ID}) is None
    assert pushed_busy(page, {"pk": 31, "tab": "another-tab"}) == "true"
    expect(page.locator("#version")).to_have_text(f"version {start + 2}")
    assert received["refresh_gets"] == start + 2  # 20 changes, then another tab's: 2 fetches
    assert page.title() == f"v{start + 2}" and page.evaluate("sessionStorage.loads") == "1"
    assert page.input_value("#draft") == "still typing" and page.evaluate("document.activeElement.id") == "draft"
    assert page.errors == []
