"""The package's layout rules: no import cycle, the push server's wing kept apart, public paths stable.

The import graph is read from the sources (every ``import`` statement, those under
``TYPE_CHECKING`` and inside functions too), and checked again by importing the
Django side in a fresh interpreter and looking at what it loaded.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils.module_loading import import_string

from serverpush import protocol

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "serverpush"
SERVER = "serverpush.server"
# The processes that host the push server: they import its wing to start it.
ENTRY_POINTS = {"serverpush.management.commands.runserverpush", "serverpush.asgi"}
# What only Django processes run (requests, signals, the send API): the wing never needs it.
DJANGO_SIDE = {"serverpush.apps", "serverpush.capture", "serverpush.checks", "serverpush.client", "serverpush.messages", "serverpush.middleware", "serverpush.revocation", "serverpush.templatetags.serverpush"}
PUBLIC_PATHS = [
    "serverpush.client.context_processor",
    "serverpush.middleware.ServerPushMiddleware",
    "serverpush.handlers.WebSocketHandler",
    "serverpush.handlers.Handler",
    "serverpush.notify",
    "serverpush.notify_all",
    "serverpush.ping_notifier",
    "serverpush.register",
    "serverpush.revoke",
    "serverpush.send",
    "serverpush.conf.DEFAULTS",
    "serverpush.serializers.FieldMap",
    "serverpush.tokens.SignedTokenizer",
    "serverpush.log.get_log",
    "serverpush.server.node.PushServer",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The serverpush modules ``name`` imports, wherever the statement is."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import mod`` imports the module pkg.mod, ``from mod import name`` the module mod.
            found.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module for alias in node.names)
    return {module for module in found if module in MODULES}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list[list[str]]:
    """Every strongly connected group of more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in GRAPH[name]:
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1 or name in GRAPH[name]:
                found.append(sorted(group))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    return found


def test_the_graph_sees_the_imports() -> None:
    assert "serverpush.server.fanout" in GRAPH["serverpush.server.node"]
    assert "serverpush.server.messages" in GRAPH["serverpush.server.fanout"]  # from serverpush.server import messages
    assert "serverpush.conf" in GRAPH["serverpush.capture"]  # from serverpush import conf


def test_no_import_cycle() -> None:
    assert cycles() == []


def test_nothing_outside_the_wing_imports_it() -> None:
    offenders = {name: sorted(m for m in imports if m.startswith(SERVER)) for name, imports in GRAPH.items() if not name.startswith(SERVER) and name not in ENTRY_POINTS}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_wing_imports_nothing_only_django_processes_run() -> None:
    offenders = {name: sorted(imports & DJANGO_SIDE) for name, imports in GRAPH.items() if name.startswith(SERVER)}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_a_django_process_never_loads_the_wing() -> None:
    """Imported for real: a configured Django with serverpush's pages, tags and API loads no server module."""
    script = """
import json, sys, django
django.setup()
import serverpush, serverpush.client, serverpush.middleware, serverpush.templatetags.serverpush, serverpush.handlers, serverpush.watch
from django.core import checks
checks.run_checks()
print(json.dumps(sorted(m for m in sys.modules if m.startswith("serverpush"))))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"}, timeout=120, check=True)
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert "serverpush.client" in loaded
    assert [name for name in loaded if name.startswith(SERVER)] == []


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_paths_import(path: str) -> None:
    assert import_string(path) is not None


def js_codes(file: str, var: str) -> set[str]:
    source = (ROOT / "serverpush_js" / "static" / "serverpush" / file).read_text()
    found = re.search(rf"var {var} = \{{([^}}]*)\}}", source)
    assert found, f"{file} declares no {var}"
    return set(re.findall(r"(\w+): 1", found.group(1)))


def test_the_browser_client_knows_the_protocol_codes() -> None:
    assert js_codes("serverpush.js", "REFRESH_CODES") == protocol.REFRESH_CODES
    assert js_codes("serverpush.js", "FATAL_CODES") == protocol.FATAL_CONNECT_CODES
    assert "var REFRESH_CODES = api.refreshCodes;" in (ROOT / "serverpush_js" / "static" / "serverpush" / "watch.js").read_text()
    assert protocol.REFRESH_CODES | protocol.FATAL_CONNECT_CODES <= set(protocol.CODES)


def codes_in_sources() -> set[str]:
    """The first argument of every call that makes a coded refusal or error, across the package."""
    makers = {"Refused", "TokenError", "_refused", "_refusal", "notice", "close", "_close", "Gap"}
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                texts = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
                if name in makers and texts:  # the code comes first, the message after it
                    found.add(texts[0])
    return found


def test_every_code_the_server_sends_is_in_the_protocol() -> None:
    found = codes_in_sources()
    assert {"session_revoked", "flood", "bad_payload", "handler_error"} <= found  # the scan sees them
    assert found - set(protocol.CODES) == set()


def test_the_protocol_doc_names_every_code_and_event() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    events = [protocol.UPDATE, protocol.READY, protocol.RESYNCED, protocol.REFRESH, protocol.ERROR, protocol.WATCH, protocol.SUBSCRIBE, protocol.UNSUBSCRIBE]
    assert [name for name in [*protocol.CODES, *events] if f"`{name}`" not in doc] == []
