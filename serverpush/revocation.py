"""Revocation, pushed: when a session ends or a user loses access, their pages stop at once.

Logout, password change, deactivation and deletion of a user, and deletion of a
session row, publish a ``revoke`` entry through the log, so every push-server node
sees it; each node sends ``serverpush_refresh`` to the matching connections and
drops them.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save

from serverpush.capture import publish_on_commit
from serverpush.entries import Entry
from serverpush.tokens import session_fingerprint

REVOKE = "revoke"


def revoke(user_pk: Any = None, session_key: str | None = None) -> None:
    """Publish a revocation of one session (``session_key``) or of every session of ``user_pk``."""
    label = settings.AUTH_USER_MODEL.lower()
    publish_on_commit(Entry(model=label, pk=user_pk, op=REVOKE, fields={"session": session_fingerprint(session_key)}))


def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    revoke(getattr(user, "pk", None), getattr(session, "session_key", None))


def _remember_password(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None:
        return
    old = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._serverpush_password_changed = old is not None and old != instance.password


def _on_user_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or created:
        return
    if getattr(instance, "_serverpush_password_changed", False) or not getattr(instance, "is_active", True):
        revoke(instance.pk)


def _on_user_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    revoke(instance.pk)


def _on_session_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    revoke(session_key=instance.session_key)


def connect() -> None:
    user = get_user_model()
    user_logged_out.connect(_on_logout, dispatch_uid="serverpush.revocation.logout")
    pre_save.connect(_remember_password, sender=user, dispatch_uid="serverpush.revocation.password")
    post_save.connect(_on_user_save, sender=user, dispatch_uid="serverpush.revocation.user_save")
    post_delete.connect(_on_user_delete, sender=user, dispatch_uid="serverpush.revocation.user_delete")
    from django.apps import apps

    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        post_delete.connect(_on_session_delete, sender=Session, dispatch_uid="serverpush.revocation.session_delete")


def matches(entry: Entry, user_pk: str | None, session: str | None) -> bool:
    """Whether a connection of ``user_pk`` in ``session`` (a fingerprint) is revoked by ``entry``."""
    target = entry.fields.get("session")
    if target is not None:
        return target == session
    return entry.pk is not None and str(entry.pk) == user_pk
