"""Revocation, pushed: when a session ends or a user loses access, their pages stop at once.

Logout, password change, deactivation and deletion of a user, and deletion of a
session row, publish a ``revoke`` entry through the log, so every push-server node
sees it; each node (:mod:`serverpush.server.hub`) sends ``serverpush_refresh`` to the matching connections and
drops them.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save

from serverpush.capture import publish_on_commit
from serverpush.entries import REVOKE, Entry
from serverpush.tokens import session_fingerprint

def revoke(user: Any = None, *, session_key: str | None = None) -> None:
    """Stop the open pages of ``user`` (a user or its pk: all their sessions), or of one session.

    On every push server, once the current transaction commits, the matching pages get
    ``serverpush_refresh`` (code ``session_revoked``) and are disconnected. For the
    ends of access serverpush cannot see by itself, such as a cache-backed session
    flushed without a logout, or access that your own rules withdraw.
    """
    if session_key is not None:
        if not isinstance(session_key, str) or not session_key:
            raise TypeError(f"serverpush.revoke(session_key=...) takes a session key (request.session.session_key), not {session_key!r}.")
        _publish(None, session_key)
        return
    if user is None:
        raise TypeError("serverpush.revoke() needs a user (or its pk) or session_key=...: with neither, it would revoke nothing.")
    if isinstance(user, models.Model):
        if user._meta.label_lower != settings.AUTH_USER_MODEL.lower():
            raise TypeError(f"serverpush.revoke() takes a user ({settings.AUTH_USER_MODEL}) or its pk, not a {user._meta.label} instance.")
        user = user.pk
    _publish(user, None)


def _publish(user_pk: Any, session_key: str | None) -> None:
    """Revoke one session (``session_key``) or, without one, every session of ``user_pk``."""
    label = settings.AUTH_USER_MODEL.lower()
    publish_on_commit(Entry(model=label, pk=user_pk, op=REVOKE, fields={"session": session_fingerprint(session_key)}))


def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    _publish(getattr(user, "pk", None), getattr(session, "session_key", None))


def _remember_password(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None:
        return
    old = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._serverpush_password_changed = old is not None and old != instance.password


def _on_user_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or created:
        return
    if getattr(instance, "_serverpush_password_changed", False) or not getattr(instance, "is_active", True):
        _publish(instance.pk, None)


def _on_user_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    _publish(instance.pk, None)


def _on_session_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    _publish(None, instance.session_key)


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

