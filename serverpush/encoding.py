"""JSON for what application code hands to serverpush: messages, handler replies, watch filters.

Values are converted where they are given (the caller's line in the traceback),
never later in the push server: datetimes become ISO 8601 strings, ``Decimal``
and ``UUID`` strings, lazy translations their text, model instances their pk.
"""
from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class Encoder(DjangoJSONEncoder):
    """Django's encoder (dates, decimals, UUIDs, lazy strings), plus model instances as their pk."""

    def default(self, o: Any) -> Any:
        if isinstance(o, models.Model):
            if o.pk is None:
                raise TypeError(f"cannot send unsaved {type(o).__name__} {o!r:.60}: it has no pk yet; save it first")
            return o.pk
        try:
            return super().default(o)
        except TypeError:
            raise TypeError(
                f"cannot send {o!r:.60} (a {type(o).__module__}.{type(o).__qualname__}) as JSON: "
                "convert it to a str, number, bool, None, list or dict first"
            ) from None


def dumps(data: Any) -> str:
    """``data`` as compact JSON; raises ``TypeError`` naming the first value JSON cannot hold.

    NaN and infinities raise ``ValueError``: browsers' JSON.parse rejects them.
    """
    return json.dumps(data, cls=Encoder, separators=(",", ":"), allow_nan=False)


def jsonable(data: Any) -> Any:
    """``data`` converted to plain JSON values (dicts, lists, str, numbers, bool, None)."""
    return json.loads(dumps(data))
