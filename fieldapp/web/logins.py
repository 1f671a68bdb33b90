"""Login throttling: failed logins per account and per address slow, then block, further attempts.

The rules are domain.sessions.Throttle; the counters live in storage.sessions under hashed keys, so
the table names no account and no address. No thread ever sleeps: a refused attempt is answered
429 at once, with the time to try again.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from flask import current_app
from flask_babel import format_time, ngettext

from fieldapp.domain.sessions import Throttle
from fieldapp.storage import sessions
from fieldapp.web import clock
from fieldapp.web.db import get_db


@dataclass(frozen=True)
class Refusal:
    kind: str  # "slow" or "locked"
    retry_after: int  # seconds

    def message(self) -> str:
        if self.kind == "slow":
            return ngettext(
                "Too many failed attempts. Wait %(num)s second before trying again.",
                "Too many failed attempts. Wait %(num)s seconds before trying again.",
                self.retry_after)
        minutes = math.ceil(self.retry_after / 60)
        return ngettext(
            "Too many failed attempts: logging in is blocked for %(num)s minute, until "
            "%(time)s. Try again then, or ask an administrator.",
            "Too many failed attempts: logging in is blocked for %(num)s minutes, until "
            "%(time)s. Try again then, or ask an administrator.",
            minutes, time=format_time(clock.utc(clock.now() + self.retry_after), "short"))


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _rules() -> dict[str, Throttle]:
    c = current_app.config
    lock = float(c["LOGIN_LOCK_MINUTES"]) * 60
    return {"account": Throttle(int(c["LOGIN_SLOW_AFTER"]), int(c["LOGIN_LOCK_AFTER"]), lock),
            "address": Throttle(int(c["LOGIN_ADDRESS_SLOW_AFTER"]), int(c["LOGIN_ADDRESS_LOCK_AFTER"]),
                                lock)}


def _keys(username: str, address: str | None) -> dict[str, str]:
    return {"account": _key("account", username), "address": _key("address", address or "")}


def refusal(username: str, address: str | None) -> Refusal | None:
    """Why an attempt now must be refused, if it must; the longest wait wins."""
    keys, rules, now = _keys(username, address), _rules(), clock.now()
    counts = sessions.failures(get_db(), keys.values())
    blocks = [rules[kind].blocked_until(*counts[key], now) for kind, key in keys.items() if key in counts]
    blocks = [b for b in blocks if b]
    if not blocks:
        return None
    kind, until = max(blocks, key=lambda b: b[1])
    return Refusal(kind, max(1, math.ceil(until - now)))


def failed(username: str, address: str | None) -> None:
    now = clock.now()
    forget = max(rule.lock_seconds for rule in _rules().values())
    sessions.add_failure(get_db(), _keys(username, address).values(), at=now, forget_before=now - forget)


def succeeded(username: str) -> None:
    """A successful login clears the account's count (not the address's: one valid account must not
    let an address guess the passwords of others)."""
    sessions.clear_failures(get_db(), _keys(username, None)["account"])
