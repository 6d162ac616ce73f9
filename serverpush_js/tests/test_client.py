"""serverpush.js in a real headless Chromium, without a push server.

The pages load the vendored Socket.IO client, (optionally) jQuery and serverpush.js
from the repository, then drive the client through ``window.serverpush._handle``,
the function the socket listeners call.
"""
import http.server
import os
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SERVERPUSH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TIMEOUT = 5000  # ms, for every wait

SOCKETIO = "/serverpush_js/static/serverpush/vendor/socket.io.min.js"
JQUERY = "/demo/static/demo/jquery.min.js"
CLIENT = "/serverpush_js/static/serverpush/serverpush.js"


def page_html(jquery=True, attrs='data-token=""'):
    jq = f'<script src="{JQUERY}"></script>' if jquery else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<script src="{SOCKETIO}"></script>
{jq}
<script src="{CLIENT}" data-serverpush {attrs}></script>
<script>
  sessionStorage.loads = String(Number(sessionStorage.loads || 0) + 1);
  window.calls = [];
</script>
</head><body><span id="generated_timestamp">
  t1700000000000
</span></body></html>"""


# Nothing listens there: the auto-connecting page gets connection errors, which is all
# these tests need (socket.io keeps retrying in the background).
DEAD_PORT = free_port()

PAGES = {
    "/jq.html": page_html(jquery=True),
    "/nojq.html": page_html(jquery=False),
    "/auto.html": page_html(attrs=f'data-token="tok123" data-url="http://127.0.0.1:{DEAD_PORT}" '
                                  'data-path="/push/socket.io"'),
    # SERVERPUSH_URL a path (a push server behind a path route, or serverpush.asgi), websocket only.
    "/same-origin.html": page_html(attrs='data-token="tok123" data-url="/push/socket.io/" data-port="8013" data-transports="websocket"'),
}


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(REPO), **kwargs)

    def do_GET(self):
        body = PAGES.get(self.path.split("?")[0])
        if body is None:
            return super().do_GET()
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium) or set SERVERPUSH_CHROMIUM")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, base_url):
    contexts = []

    def open_(name="jq.html"):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.console_errors = []
        page.page_errors = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on("pageerror", lambda e: page.page_errors.append(str(e)))
        page.goto(f"{base_url}/{name}")
        page.wait_for_function("window.serverpush && window.calls")
        return page

    yield open_
    for context in contexts:
        context.close()


PUSH = {"name": "reload", "op": "update", "model": "auth.user", "pk": 1,
        "data": {"greeting": "Hey, alice!"}, "id": "6f1c2a:42", "cursor": "6f1c2a:42", "replay": False}
META = {"op": "update", "model": "auth.user", "pk": 1, "id": "6f1c2a:42", "cursor": "6f1c2a:42", "replay": False, "resync": False, "tab": None}

BIND_JQ = """() => $(document).bind('serverpush_reload', function (event, data, meta) {
    calls.push({via: 'jquery', type: event.type, data: data, meta: meta, nargs: arguments.length});
})"""
BIND_NATIVE = """() => document.addEventListener('serverpush_reload', function (event) {
    calls.push({via: 'native', type: event.type, data: event.detail, meta: event.serverpush,
                custom: event instanceof CustomEvent});
})"""


def handle(page, name, payload):
    page.evaluate("([n, p]) => serverpush._handle(n, p)", [name, payload])


def test_not_connected_without_token(open_page):
    page = open_page()
    assert page.evaluate("serverpush.socket") is None
    assert page.evaluate("serverpush.state") == "disconnected"
    assert page.evaluate("typeof serverpush.connect") == "function"


def test_jquery_and_native_each_called_once(open_page):
    page = open_page()
    page.evaluate(BIND_JQ)
    page.evaluate(BIND_NATIVE)
    # Bubbling to window must not duplicate either kind of handler either.
    page.evaluate("""() => {
        $(window).on('serverpush_reload', () => calls.push({via: 'jquery-window'}));
        window.addEventListener('serverpush_reload', () => calls.push({via: 'native-window'}));
    }""")
    handle(page, "serverpush", PUSH)
    calls = page.evaluate("calls")
    assert sorted(c["via"] for c in calls) == ["jquery", "jquery-window", "native", "native-window"]
    jq = next(c for c in calls if c["via"] == "jquery")
    native = next(c for c in calls if c["via"] == "native")
    assert jq == {"via": "jquery", "type": "serverpush_reload", "data": PUSH["data"],
                  "meta": META, "nargs": 3}
    assert native == {"via": "native", "type": "serverpush_reload", "data": PUSH["data"],
                      "meta": META, "custom": True}
    assert page.evaluate("serverpush.received") == 1


def test_delete_and_replay_in_meta(open_page):
    page = open_page()
    page.evaluate(BIND_JQ)
    page.evaluate(BIND_NATIVE)
    handle(page, "serverpush", dict(PUSH, op="delete", data=None, replay=True, cursor="e:7"))
    calls = page.evaluate("calls")
    assert len(calls) == 2
    for call in calls:
        assert call["data"] is None
        assert call["meta"] == dict(META, op="delete", replay=True, cursor="e:7")


def test_cursor_follows_events(open_page):
    page = open_page()
    assert page.evaluate("serverpush.cursor") is None
    handle(page, "serverpush", dict(PUSH, cursor="e:1"))
    assert page.evaluate("serverpush.cursor") == "e:1"
    handle(page, "serverpush", dict(PUSH, cursor="e:2"))
    assert page.evaluate("serverpush.cursor") == "e:2"
    page.evaluate("""() => document.addEventListener('serverpush_ready',
                        e => calls.push({detail: e.detail}))""")
    handle(page, "serverpush_ready", {"cursor": "e:9", "replayed": 2})
    assert page.evaluate("serverpush.cursor") == "e:9"
    assert page.evaluate("serverpush.state") == "live"
    assert page.evaluate("calls") == [{"detail": {"cursor": "e:9", "replayed": 2}}]
    assert page.evaluate("serverpush.received") == 2


def test_throwing_handler_does_not_stop_the_next(open_page):
    page = open_page()
    page.evaluate("""() => {
        $(document).bind('serverpush_reload', () => { throw new Error('jq boom'); });
        $(document).bind('serverpush_reload', (e, data) => calls.push('jq2'));
        document.addEventListener('serverpush_reload', () => { throw new Error('native boom'); });
        document.addEventListener('serverpush_reload', () => calls.push('native2'));
    }""")
    handle(page, "serverpush", PUSH)
    assert page.evaluate("calls") == ["jq2", "native2"]
    handle(page, "serverpush", dict(PUSH, cursor="e:3"))  # the client still works
    assert page.evaluate("calls") == ["jq2", "native2", "jq2", "native2"]
    assert page.evaluate("serverpush.cursor") == "e:3"
    assert any("jq boom" in text for text in page.console_errors)


def test_refresh_reloads_by_default(open_page):
    page = open_page()
    assert page.evaluate("sessionStorage.loads") == "1"
    with page.expect_navigation(timeout=TIMEOUT):
        handle(page, "serverpush_refresh", {"code": "log_gap", "message": "gone"})
    page.wait_for_function("window.serverpush && window.calls")
    assert page.evaluate("sessionStorage.loads") == "2"


def test_refresh_on_connect_error_token_expired_reloads(open_page):
    page = open_page()
    with page.expect_navigation(timeout=TIMEOUT):
        handle(page, "connect_error",
               {"message": "refused", "data": {"code": "token_expired", "message": "too old"}})
    page.wait_for_function("window.serverpush && window.calls")
    assert page.evaluate("sessionStorage.loads") == "2"


PREVENTERS = {
    "native": """() => document.addEventListener('serverpush_refresh', e => {
        calls.push(e.detail); e.preventDefault(); })""",
    "jquery": """() => $(document).bind('serverpush_refresh', (e, detail) => {
        calls.push(detail); e.preventDefault(); })""",
    "jquery-return-false": """() => $(document).bind('serverpush_refresh', (e, detail) => {
        calls.push(detail); return false; })""",
}


@pytest.mark.parametrize("preventer", sorted(PREVENTERS))
def test_refresh_prevented_does_not_reload(open_page, preventer):
    page = open_page()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate(PREVENTERS[preventer])
    handle(page, "serverpush_refresh", {"code": "log_restarted", "message": "new epoch"})
    handle(page, "serverpush_refresh", {"code": "log_gap", "message": "second one"})
    assert page.evaluate("calls") == [{"code": "log_restarted", "message": "new epoch", "delay": 0}]
    assert page.evaluate("serverpush.refreshed") == {
        "code": "log_restarted", "message": "new epoch", "reload": False, "delay": 0}
    assert page.evaluate("serverpush.state") == "refused"
    assert page.evaluate("sessionStorage.loads") == "1"
    assert navigations == []


def test_refresh_fires_once_across_sources(open_page):
    page = open_page()
    page.evaluate(PREVENTERS["native"])
    handle(page, "connect_error", {"message": "x", "data": {"code": "session_mismatch",
                                                          "message": "other user"}})
    handle(page, "serverpush_refresh", {"code": "log_gap", "message": "gone"})
    assert page.evaluate("calls") == [{"code": "session_mismatch", "message": "other user", "delay": 0}]


def test_a_refresh_after_a_log_gap_reloads_after_a_random_delay_within_the_jitter(open_page):
    page = open_page()
    page.evaluate("""() => { window.t0 = Date.now(); serverpush.reload = () => calls.push(Date.now() - t0); }""")
    handle(page, "serverpush_refresh", {"code": "log_gap", "message": "gone", "jitter_ms": 1500})
    delay = page.evaluate("serverpush.refreshed.delay")
    assert 0 <= delay < 1500 and page.evaluate("serverpush.refreshed.reload") is True
    page.wait_for_function("calls.length === 1", timeout=TIMEOUT)
    assert page.evaluate("calls")[0] >= delay  # not before its turn
    delays = {open_page().evaluate("""() => { serverpush.reload = () => {};
        serverpush._handle('serverpush_refresh', {code: 'log_gap', message: 'x', jitter_ms: 10000000});
        return serverpush.refreshed.delay; }""") for _ in range(3)}
    assert len(delays) == 3  # pages spread their reloads


def test_resynced_keeps_the_page_live_and_fires_an_event(open_page):
    page = open_page()
    page.evaluate("""() => document.addEventListener('serverpush_resynced', e => calls.push(e.detail))""")
    handle(page, "serverpush", dict(PUSH, resync=True, cursor="e:9"))
    handle(page, "serverpush_resynced", {"code": "log_restarted", "cursor": "e:10", "healed": 1})
    assert page.evaluate("calls") == [{"code": "log_restarted", "healed": 1}]
    assert page.evaluate("[serverpush.state, serverpush.cursor, serverpush.healed, serverpush.refreshed]") == ["live", "e:10", 1, None]


def test_a_page_whose_connection_drops_mid_heal_resumes_from_before_the_gap(open_page):
    """Its cursor moves only at serverpush_resynced: reconnecting, it meets the gap again and is healed whole."""
    page = open_page()
    handle(page, "serverpush", dict(PUSH, cursor="e:3"))
    handle(page, "serverpush_ready", {"cursor": "f:10", "replayed": 0, "healing": True})
    handle(page, "serverpush", dict(PUSH, resync=True, cursor="f:10"))
    handle(page, "disconnect", "transport close")
    assert page.evaluate("serverpush.cursor") == "e:3"
    handle(page, "serverpush_ready", {"cursor": "f:12", "replayed": 0, "healing": True})
    handle(page, "serverpush_resynced", {"code": "log_restarted", "cursor": "f:12", "healed": 1})
    assert page.evaluate("serverpush.cursor") == "f:12"


@pytest.mark.parametrize("code", ["bad_payload", "token_invalid", "log_mismatch"])
def test_refused_connect_error_stops(open_page, code):
    page = open_page()
    page.evaluate("""() => document.addEventListener('serverpush_refresh', () => calls.push('r'))""")
    handle(page, "connect_error", {"message": "x", "data": {"code": code, "message": "broken"}})
    assert page.evaluate("serverpush.state") == "refused"
    assert page.evaluate("calls") == []
    assert any(code in text and "broken" in text for text in page.console_errors)


def test_without_jquery_native_only(open_page):
    page = open_page("nojq.html")
    assert page.evaluate("typeof window.jQuery") == "undefined"
    page.evaluate(BIND_NATIVE)
    handle(page, "serverpush", PUSH)
    assert page.evaluate("calls") == [{"via": "native", "type": "serverpush_reload",
                                       "data": PUSH["data"], "meta": META, "custom": True}]
    page.evaluate(PREVENTERS["native"])
    handle(page, "serverpush_refresh", {"code": "log_gap", "message": "gone"})
    assert page.evaluate("serverpush.refreshed.reload") is False
    assert page.evaluate("sessionStorage.loads") == "1"
    assert page.page_errors == []


def test_auto_connect_reads_script_tag(open_page):
    page = open_page("auto.html")
    page.wait_for_function("serverpush.socket !== null")
    assert page.evaluate("serverpush.cursor") == "t1700000000000"  # from #generated_timestamp
    opts = page.evaluate("""() => { const o = serverpush.socket.io.opts;
        return {path: o.path, withCredentials: o.withCredentials, delay: o.reconnectionDelay,
                max: o.reconnectionDelayMax, uri: serverpush.socket.io.uri}; }""")
    assert opts["path"] == "/push/socket.io"
    assert opts["withCredentials"] is True
    assert (opts["delay"], opts["max"]) == (500, 10000)
    assert opts["uri"] == f"http://127.0.0.1:{DEAD_PORT}"
    auth = "new Promise(resolve => serverpush.socket.auth(resolve))"
    assert page.evaluate(auth) == {"token": "tok123", "cursor": "t1700000000000"}
    handle(page, "serverpush", dict(PUSH, cursor="e:5"))
    assert page.evaluate(auth) == {"token": "tok123", "cursor": "e:5"}  # reconnects resume


def test_a_url_that_is_a_path_connects_to_the_pages_own_origin(open_page, base_url):
    page = open_page("same-origin.html")
    page.wait_for_function("serverpush.socket !== null")
    assert page.evaluate("[serverpush.socket.io.uri, serverpush.socket.io.opts.path, serverpush.socket.io.opts.transports]") == [base_url, "/push/socket.io/", ["websocket"]]
    default = open_page("auto.html")
    default.wait_for_function("serverpush.socket !== null")
    assert default.evaluate("serverpush.socket.io.opts.transports") == ["polling", "websocket"]


def test_server_disconnect_reconnects(open_page):
    page = open_page("auto.html")
    page.wait_for_function("serverpush.socket !== null")
    page.evaluate("""() => document.addEventListener('serverpush_disconnect',
                        e => calls.push(e.detail))""")
    page.evaluate("serverpush.socket.disconnect()")  # as after a server kick: inactive
    assert page.evaluate("serverpush.socket.active") is False
    handle(page, "disconnect", "io server disconnect")
    assert page.evaluate("serverpush.state") == "disconnected"
    assert page.evaluate("calls") == [{"reason": "io server disconnect"}]
    page.wait_for_function("serverpush.socket.active", timeout=TIMEOUT)
    assert page.evaluate("serverpush.state") == "connecting"


def test_a_message_fires_once_even_if_it_arrives_twice(open_page):
    page = open_page()
    page.evaluate("() => $(document).bind('serverpush_message', (e, data, meta) => calls.push([data, meta.op]))")
    message = {"name": "message", "op": "message", "model": None, "pk": None, "data": {"msg": "hi"}, "cursor": "e:5", "replay": True}
    handle(page, "serverpush", message)
    handle(page, "serverpush", dict(message, replay=False))  # replayed, then live: the same message
    handle(page, "serverpush", dict(message, cursor="e:6"))
    assert page.evaluate("calls") == [[{"msg": "hi"}, "message"], [{"msg": "hi"}, "message"]]


def test_an_unreachable_push_server_is_named_once_in_the_console(open_page):
    page = open_page("auto.html")
    page.evaluate("() => { window.fails = 0; serverpush.socket.on('connect_error', () => { window.fails += 1; }); }")
    page.wait_for_function("window.fails >= 2")  # it keeps retrying, and says so once
    said = [text for text in page.console_errors if "runserverpush" in text]
    assert len(said) == 1
    assert f"cannot reach the push server at http://127.0.0.1:{DEAD_PORT}" in said[0]
    assert "is `./manage.py runserverpush` running?" in said[0]
    assert page.evaluate("serverpush.state") == "connecting"
