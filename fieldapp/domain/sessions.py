"""Rules for login sessions and login throttling. Times are seconds since the epoch; no clock here."""

from __future__ import annotations

from dataclasses import dataclass

# A session's last visit is written at most this often (seconds): a page load does not have to
# write to the database each time. The idle timeout is therefore exact to within this.
TOUCH_EVERY = 60


@dataclass(frozen=True)
class Timeouts:
    idle: float  # seconds without a request
    absolute: float  # seconds since login

    def expired(self, *, created_at: float, last_seen: float, now: float) -> bool:
        """Whether a session has ended: `Timeouts(1800, 43200).expired(created_at=0, last_seen=0,
        now=1801) is True`."""
        return now - last_seen >= self.idle or now - created_at >= self.absolute


@dataclass(frozen=True)
class Throttle:
    """Failed logins of one account or one address: after `slow_after` failures each further
    attempt waits (1 s, 2 s, 4 s … at most `max_wait`) after the last failure; after `lock_after`
    failures attempts are refused until `lock_seconds` after the last one. Failures older than
    `lock_seconds` are forgotten."""

    slow_after: int
    lock_after: int
    lock_seconds: float
    max_wait: float = 60

    def forgotten(self, last_at: float, now: float) -> bool:
        return now - last_at >= self.lock_seconds

    def blocked_until(self, failures: int, last_at: float, now: float) -> tuple[str, float] | None:
        """("slow" | "locked", until) if an attempt now must be refused, else None."""
        if failures < self.slow_after or self.forgotten(last_at, now):
            return None
        if failures >= self.lock_after:
            until = last_at + self.lock_seconds
            kind = "locked"
        else:
            until = last_at + min(2.0 ** (failures - self.slow_after), self.max_wait)
            kind = "slow"
        return (kind, until) if now < until else None
