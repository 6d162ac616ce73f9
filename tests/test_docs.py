"""The docs stay true: every setting documented, the Quickstart as CI runs it."""
from __future__ import annotations

import re

from serverpush import conf
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `(SERVERPUSH_\w+)` \|", README, re.MULTILINE))
    assert set(conf.DEFAULTS) - documented == set()
    assert documented - set(conf.DEFAULTS) == set()


def quickstart_lines() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [line for block in re.findall(r"```\n(.*?)```", section, re.DOTALL) for line in block.strip().splitlines()]


def test_the_quickstart_is_two_command_lines_and_ci_runs_the_second():
    install_demo, install_test = quickstart_lines()
    assert "rundemo" in install_demo and "pytest" in install_test
    assert install_test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_error_code_the_server_sends_is_in_the_protocol_doc():
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    source = "\n".join(p.read_text() for p in (ROOT / "serverpush").rglob("*.py"))
    codes = set(re.findall(r'(?:Refused|Gap|TokenError|close)\(\s*(?:sid,\s*)?"([a-z_]+)"', source))
    assert {"bad_payload", "token_invalid", "session_mismatch", "log_gap", "session_revoked", "flood"} <= codes
    assert {code for code in codes if f"`{code}`" not in protocol} == set()


def test_security_doc_exists_and_names_every_limit():
    security = (ROOT / "docs" / "security.md").read_text()
    for setting in ("SERVERPUSH_MAX_MESSAGE_BYTES", "SERVERPUSH_CLIENT_EVENTS_PER_SECOND", "SERVERPUSH_MAX_SUBSCRIPTIONS", "SERVERPUSH_NOTIFIER_SECRET", "SERVERPUSH_ALLOWED_ORIGINS"):
        assert setting in security
