"""Process-wide counters of what the push server did, served at ``/serverpush/stats``."""
from __future__ import annotations

from collections import Counter

stats: Counter[str] = Counter()
