"""Where a save becomes a log entry: model signals, published only after commit."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from serverpush import conf
from serverpush.entries import Entry, now_ms
from serverpush.log import get_log

logger = logging.getLogger(__name__)


def is_published(model: type[models.Model]) -> bool:
    """Whether changes of ``model`` go to the log (``SERVERPUSH_MODELS`` / ``_EXCLUDE_MODELS``)."""
    only, excluded = _publication()
    label = model._meta.label_lower
    return label in only if only is not None else label not in excluded


@conf.derived
def _publication() -> tuple[frozenset[str] | None, frozenset[str]]:
    only = conf.get("SERVERPUSH_MODELS")
    return (
        None if only is None else frozenset(m.lower() for m in only),
        frozenset(m.lower() for m in conf.get("SERVERPUSH_EXCLUDE_MODELS")),
    )


def publish_on_commit(entry: Entry, using: str | None = None) -> None:
    """Send ``entry`` once the current transaction commits; never if it rolls back."""
    transaction.on_commit(lambda: publish([entry]), using=using)


def publish(entries: list[Entry]) -> None:
    """Append committed entries to the log, stamped now. Never raises: a push problem must not fail a request.

    The stamp is the commit's time, not the save's: a page rendered while a long
    transaction was open takes its cursor before that commit, so it replays it.
    """
    committed = now_ms()
    for entry in entries:
        entry.ts = committed
    try:
        get_log().append(entries)
    except Exception:
        logger.exception("serverpush: could not publish %d entries (%s)", len(entries), entries[0].model)


def notify(target: models.Model | models.QuerySet | Iterable[models.Model], *, op: str = "update", using: str | None = None) -> None:
    """Publish a change for writes that skip signals (``QuerySet.update()``, ``bulk_create``).

    ``target`` is an object, a queryset or an iterable of objects; their current
    state is read and published when the transaction commits.
    """
    objects = [target] if isinstance(target, models.Model) else list(target)
    for obj in objects:
        if not isinstance(obj, models.Model):
            raise TypeError(f"serverpush.notify() takes model instances or a queryset, got {obj!r}")
        publish_on_commit(Entry.of(obj, op), using=using)


def ping_notifier(model_or_obj: type[models.Model] | models.Model, pk: Any = None) -> None:
    """The original API: ``ping_notifier(obj)`` or ``ping_notifier(Model, pk=...)``."""
    if isinstance(model_or_obj, models.Model):
        notify(model_or_obj)
    elif isinstance(model_or_obj, type) and issubclass(model_or_obj, models.Model):
        queryset = model_or_obj._default_manager.all()
        notify(queryset if pk is None else queryset.filter(pk=pk))
    else:
        raise TypeError(f"ping_notifier() takes a model class or instance, got {model_or_obj!r}")


def _on_save(sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False, using: str | None = None, **kwargs: Any) -> None:
    if raw or not is_published(sender):
        return
    publish_on_commit(Entry.of(instance, "create" if created else "update"), using=using)


def _on_delete(sender: type[models.Model], instance: models.Model, using: str | None = None, **kwargs: Any) -> None:
    if is_published(sender):
        publish_on_commit(Entry.of(instance, "delete"), using=using)


def connect() -> None:
    post_save.connect(_on_save, dispatch_uid="serverpush.capture.save")
    post_delete.connect(_on_delete, dispatch_uid="serverpush.capture.delete")
