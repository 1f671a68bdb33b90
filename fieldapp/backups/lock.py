"""Who has the instance open: each `fieldapp serve` holds a lock file of its own while it runs,
and a restore holds one too. An operating-system lock ends with its process, power cut included,
so a lock file left behind never blocks anything.

Each side locks its own file first, then looks at the other's: a server starting while a restore
runs, or a restore while a server runs, always sees the other and stops."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

RUN_DIR = "run"
RESTORE = "restore.lock"


def _try_lock(f: IO) -> bool:
    f.seek(0)  # Windows locks bytes from the current position: the same byte on every side
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _held(path: Path) -> bool:
    """True if a live process holds the lock on `path`."""
    try:
        f = open(path, "a+")  # noqa: SIM115
    except OSError:
        return True  # Windows: a locked file cannot even be opened by others
    with f:
        return not _try_lock(f)


class Busy(Exception):
    """The other side holds the instance: a server runs (pids), or a restore does."""

    def __init__(self, pids: list[int]):
        super().__init__(pids)
        self.pids = pids


def servers(instance: Path) -> list[int]:
    """Process ids of the servers running on this instance; stale lock files are removed."""
    found = []
    for path in sorted((instance / RUN_DIR).glob("serve-*.lock")):
        if _held(path):
            found.append(int(path.stem.split("-", 1)[1]))
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return found


def hold_serving(instance: Path) -> IO:
    """Mark this process as serving the instance until it ends; Busy if a restore runs."""
    folder = instance / RUN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / f"serve-{os.getpid()}.lock", "w")  # noqa: SIM115 - held for the process
    f.write(str(os.getpid()))
    f.flush()
    _try_lock(f)
    if (folder / RESTORE).exists() and _held(folder / RESTORE):
        f.close()
        (folder / f"serve-{os.getpid()}.lock").unlink()
        raise Busy([])
    return f


@contextlib.contextmanager
def restoring(instance: Path) -> Iterator[None]:
    """Hold the instance for a restore; Busy (with their pids) if servers run on it."""
    folder = instance / RUN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / RESTORE, "a+") as f:
        if not _try_lock(f):
            raise Busy([])
        running = servers(instance)
        if running:
            raise Busy(running)
        yield
