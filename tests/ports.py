"""Free loopback ports for the servers the tests start.

Ports come from below Linux's ephemeral range (32768-60999), so an outgoing
connection can never take one between the moment it is handed out and the moment its
server binds it, and no port is handed out twice in one run: the kernel's own
``bind(0)`` may return a port it just released, which once gave the push server and
its notifier the same port.
"""

import random
import socket

_LOW, _HIGH = 20000, 32000
_handed_out: set[int] = set()
_next = random.randrange(_LOW, _HIGH)


def free_port() -> int:
    global _next
    for _ in range(_HIGH - _LOW):
        port, _next = _next, _LOW + (_next + 1 - _LOW) % (_HIGH - _LOW)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free loopback port between {_LOW} and {_HIGH}")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
