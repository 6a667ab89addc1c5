"""Running a management command in the tests, as an operator would."""

from __future__ import annotations

import io

from django.core.management import call_command


def run(*args: str) -> str:
    """Run ``manage.py`` command ``args`` in this process; what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
