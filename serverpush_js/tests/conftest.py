"""The project's fixtures (tests/conftest.py) that the client's integration tests share."""
from tests.conftest import browser, memory_log, start_push_server  # noqa: F401
