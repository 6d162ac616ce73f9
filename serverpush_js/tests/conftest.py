"""The project's fixtures (tests/conftest.py) that the client's integration tests share."""
from tests.conftest import browser, start_push_server  # noqa: F401
