"""Save-to-browser latency of the demo counter: click in one tab, time the update in another.

    .venv/bin/python bench/latency.py [-n 50] [--servers rundemo,uvicorn]

For each of ``--servers`` in turn (``rundemo``: ``manage.py rundemo``, Django's
runserver beside the push server under eventlet; ``uvicorn``: ``uvicorn
demo.asgi:application``, pages and push server in one ASGI process), starts the
demo as the browser tests do, opens ``/`` in two tabs of one headless Chromium, and clicks Increment in tab A ``n`` times, each time waiting until
tab B shows the new value. Both timestamps are taken in the browser (a click listener
in A, a MutationObserver in B) on the same clock, so Playwright's own round trips are
not counted: the figure is POST, commit, notify, push server, Socket.IO, handler.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.conftest import DemoServer, Uvicorn, launch_chromium  # noqa: E402

SERVERS = {"rundemo": DemoServer, "uvicorn": Uvicorn}

NOW = "performance.timeOrigin + performance.now()"
CLICK_CLOCK = f"() => document.getElementById('increment').addEventListener('click', () => window.clicked = {NOW}, true)"
UPDATE_CLOCK = f"""() => {{
  window.shown = {{}};
  const counter = document.getElementById('counter');
  new MutationObserver(() => {{ shown[counter.textContent.trim()] = {NOW}; }})
    .observe(counter, {{childList: true, characterData: true, subtree: true}});
}}"""


def open_live(page: Page, url: str) -> Page:
    page.goto(url)
    page.wait_for_function("window.serverpush && serverpush.state === 'live'")
    return page


def measure(demo: DemoServer | Uvicorn, clicks: int) -> list[float]:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context()
        context.set_default_timeout(10_000)
        a, b = open_live(context.new_page(), demo.url + "/"), open_live(context.new_page(), demo.url + "/")
        b.wait_for_function("() => document.getElementById('counter').textContent === "
                            f"{a.inner_text('#counter')!r}")  # B's page view has reached A
        a.evaluate(CLICK_CLOCK)
        b.evaluate(UPDATE_CLOCK)
        a.bring_to_front()  # the tab one clicks in; Playwright's click is slow in a background tab
        latencies = []
        for _ in range(clicks):
            expected = str(int(b.inner_text("#counter")) + 1)
            a.click("#increment")
            shown = b.wait_for_function(f"window.shown[{expected!r}]", polling=5).json_value()
            latencies.append(shown - a.evaluate("window.clicked"))
        browser.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="number of clicks (default 50)")
    parser.add_argument("--servers", default="rundemo,uvicorn", help="comma-separated subset of rundemo,uvicorn (default both, in that order)")
    args = parser.parse_args()
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        with tempfile.TemporaryDirectory(prefix="serverpush-bench-") as tmp:
            demo = SERVERS[name](Path(tmp))
            try:
                latencies = measure(demo.start(), args.n)
            finally:
                demo.close()
        quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
        print(f"{name}: click in tab A -> update in tab B, {len(latencies)} clicks: "
              f"median {statistics.median(latencies):.1f} ms, p95 {quantiles[94]:.1f} ms, p99 {quantiles[98]:.1f} ms, "
              f"min {min(latencies):.1f} ms, max {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
