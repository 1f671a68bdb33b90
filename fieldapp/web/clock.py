"""The app's clock, in seconds since the epoch. Tests replace it: `create_app({"CLOCK": fake})`,
where `fake()` returns the time they choose, so timeouts are tested without waiting."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import current_app


def now() -> float:
    return current_app.config.get("CLOCK", time.time)()


def utc(seconds: float) -> datetime:
    """A clock reading as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)
