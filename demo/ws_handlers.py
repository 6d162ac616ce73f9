"""Handlers of the bidirectional demo page (SERVERPUSH_HANDLERS in demo/settings.py).

RandomCounter is the django-ws README's example, as written there.
"""
import random

from serverpush.handlers import WebSocketHandler


class RandomCounter(WebSocketHandler):
    def on_message(self, message):
        self.send(str(random.randint(1,100)))


class Shout(WebSocketHandler):
    """Answers in capitals, signed with the page's user: ``self.request.user`` works here."""

    def on_open(self, message):
        self.send(f"(connected as {self.request.user.username or 'anonymous'})")

    def on_message(self, message):
        self.send(f"{self.request.user.username or 'anonymous'}: {str(message).upper()}")
