"""Handlers of tests/test_handlers.py; RandomCounter is the django-ws README's, as written there."""
import random

from serverpush.handlers import WebSocketHandler

from .models import Note


class RandomCounter(WebSocketHandler):
    def on_message(self, message):
        self.send(str(random.randint(1,100)))


class Opener(WebSocketHandler):
    """on_open answers the first message itself and keeps it from on_message."""

    def on_open(self, message):
        self.send(f"opened:{message}")
        return True

    def on_message(self, message):
        self.send(f"message:{message}")


class WhoAmI(WebSocketHandler):
    """The ORM and request.user in a handler; on_close leaves a trace in the database."""

    def on_message(self, message):
        user = self.request.user
        self.send({"user": user.username if user.is_authenticated else None, "notes": Note.objects.count(), "echo": message, "namespace": self.namespace})

    def on_close(self):
        Note.objects.create(title=f"closed by {self.request.user.username or 'anonymous'}")


class Broken(WebSocketHandler):
    def on_message(self, message):
        if message == "boom":
            raise RuntimeError("handler broken on purpose")
        self.send(message)
