"""A test-case mixin running a real push server for the tests of a class."""
from __future__ import annotations

from typing import Any, ClassVar

from serverpush.testing.server import LivePage, PushServer


class PushServerMixin:
    """Runs a :class:`PushServer` for the class; mix into ``TransactionTestCase`` (changes must commit)::

        class CounterTests(PushServerMixin, TransactionTestCase):
            def test_increment_reaches_the_page(self):
                page = self.live_page("/")
                Counter.objects.create(value=1)
                assert page.wait_for(name="counter")["data"] == {"value": 1}
    """

    push_server: ClassVar[PushServer]
    push_server_settings: ClassVar[dict[str, Any]] = {}  # settings of the push server only

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls.push_server = PushServer(settings=cls.push_server_settings).start()
        cls.addClassCleanup(cls.push_server.stop)  # type: ignore[attr-defined]

    def live_page(self, path: str, client: Any = None) -> LivePage:
        """Render ``path`` (with ``self.client`` unless given) and keep it live until the test ends."""
        page = self.push_server.open(client or self.client, path)  # type: ignore[attr-defined]
        self.addCleanup(page.close)  # type: ignore[attr-defined]
        return page
