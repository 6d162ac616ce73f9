"""``python -m serverpush.testing <command> ...``: a management command with settings overridden.

How :class:`serverpush.testing.PushServer` starts its push server: the overrides
(JSON in ``SERVERPUSH_TESTING_SETTINGS``) give it the test's ports and test database.
"""
from __future__ import annotations

import json
import os
import sys

from serverpush.testing.server import SETTINGS_ENV


def main() -> None:
    from django.conf import settings
    from django.core.management import execute_from_command_line

    for name, value in json.loads(os.environ.get(SETTINGS_ENV, "{}")).items():
        setattr(settings, name, value)
    execute_from_command_line(["django-admin", *sys.argv[1:]])


if __name__ == "__main__":
    main()
