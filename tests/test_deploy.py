"""The deployment configs in deploy/: parsed, cross-checked, and their push-server command run for real.

No container runs here (the suite needs no Docker daemon): the compose file is read as
YAML and checked against the project (commands, ports, settings), nginx's routes against
the compose services, and the push server's command and health check are run as written.
"""
from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import urllib.request

import pytest
import yaml
from django.core.management import get_commands

from tests.conftest import ROOT, wait_until
from tests.ports import free_port

DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def manage_commands(command: list[str]) -> list[str]:
    """The management commands a container command runs (``python manage.py X``, also inside ``sh -c``)."""
    text = command[-1] if command[:2] == ["sh", "-c"] else shlex.join(command)
    return re.findall(r"manage\.py (\w+)", text)


def test_compose_has_django_push_server_and_redis_on_one_origin(compose):
    services = compose["services"]
    assert {"redis", "migrate", "web", "push", "nginx"} <= set(services)
    redis_command = services["redis"]["command"]
    assert "noeviction" in redis_command and "--appendonly" in redis_command  # what check --deploy asks for
    for name in ("web", "push", "migrate"):
        env = services[name]["environment"]
        assert env["SERVERPUSH_LOG"].startswith("redis://redis:")
        assert env["SERVERPUSH_URL"] == "/socket.io/"  # the pages' own origin, routed by nginx
        assert services["nginx"]["ports"] == ["8000:80"]


def test_every_command_in_compose_exists(compose):
    known = get_commands()
    for name, service in compose["services"].items():
        for command in manage_commands(service.get("command", [])):
            assert command in known, f"{name} runs manage.py {command}, which does not exist"
    web = compose["services"]["web"]["command"]
    assert web[0] == "gunicorn" and importlib.util.find_spec(web[1]) is not None


def test_nginx_routes_to_the_compose_services_with_websockets_unbuffered(compose):
    conf = (DEPLOY / "nginx.conf").read_text()
    push = compose["services"]["push"]["command"]
    web = compose["services"]["web"]["command"]
    assert f"server push:{push[push.index('--port') + 1]};" in conf
    assert f"server web:{web[web.index('--bind') + 1].rpartition(':')[2]};" in conf
    socketio = conf.split("location /socket.io/", 1)[1].split("}", 1)[0]
    for line in ("proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $connection_upgrade;", "proxy_buffering off;", "proxy_read_timeout 1h;"):
        assert line in socketio
    assert conf.count("{") == conf.count("}")


def test_systemd_units_run_what_exists_with_enough_file_descriptors():
    for unit in ("serverpush.service", "django.service"):
        parser = configparser.ConfigParser(strict=True, interpolation=None)
        parser.read_string((DEPLOY / unit).read_text())
        assert {"Unit", "Service", "Install"} <= set(parser.sections())
        exec_start = shlex.split(parser["Service"]["ExecStart"])
        for command in manage_commands(exec_start):
            assert command in get_commands()
    push = configparser.ConfigParser(interpolation=None)
    push.read_string((DEPLOY / "serverpush.service").read_text())
    assert int(push["Service"]["LimitNOFILE"]) >= 65536
    assert "--noreload" in push["Service"]["ExecStart"]


def test_the_compose_push_server_command_serves_and_passes_its_health_check(compose, redis_server, tmp_path):
    service = compose["services"]["push"]
    command = list(service["command"])
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--address") + 1] = "127.0.0.1"
    assert command[:2] == ["python", "manage.py"]
    env = {**os.environ, **{k: v for k, v in service["environment"].items() if not k.startswith("DEMO_DB")}}
    env.update(SERVERPUSH_LOG=redis_server.url, DEMO_DB=str(tmp_path / "demo.sqlite3"), SERVERPUSH_NOTIFIER_PORT=str(free_port()))
    env.pop("SERVERPUSH_PATCHED", None)
    with open(tmp_path / "push.log", "wb") as log:
        process = subprocess.Popen([sys.executable, *command[1:]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = service["healthcheck"]["test"]
        probe = health[health.index("-c") + 1].replace("8013", str(port))

        def healthy() -> bool:
            assert process.poll() is None, (tmp_path / "push.log").read_text()
            return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0

        wait_until(healthy, 60, "the push server's compose health check to pass")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/serverpush/health", timeout=5) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
