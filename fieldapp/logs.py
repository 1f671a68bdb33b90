"""Log files: rotating, under <instance>/logs, one file for the server and one for the commands.

No personal data goes in: the app logs no request bodies, form values or query strings, and as a
safety net every line is cleaned before it is written — the query string of any URL is cut, and an
exception keeps its type and where it happened but not its message (a message can quote a value,
`invalid literal for int(): 'María'`). Werkzeug's request lines (they carry the query string) are
not logged at all.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d %(threadName)s] %(message)s"
_URL_QUERY = re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]*")
_OURS = "_fieldapp_handler"
log = logging.getLogger("fieldapp")


def directory(config, instance: str | Path) -> Path:
    """Where the log files are: LOG_DIR, else <instance>/logs."""
    return Path(config.get("LOG_DIR") or Path(instance) / "logs")


def files(config, instance: str | Path) -> list[Path]:
    """Every log file, rotated ones included, by name."""
    folder = directory(config, instance)
    return sorted(p for p in folder.glob("*.log*") if p.is_file()) if folder.is_dir() else []


class NoPersonalData(logging.Filter):
    """Cut query strings out of messages and the message out of exceptions, before any output."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _URL_QUERY.sub(r"\1?…", record.getMessage()), None
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, tb = record.exc_info
            record.exc_text = ("Traceback (most recent call last):\n" + "".join(traceback.format_tb(tb))
                               + f"{kind.__module__}.{kind.__qualname__} (message not logged)")
            record.exc_info = None
        return True


class _Stderr(logging.StreamHandler):
    """Standard error as it is when a line is written (a test runner swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup(config, instance: str | Path, name: str) -> Path:
    """Send every log line to <logs>/<name>.log (rotating) and warnings to stderr too.

    `setup(app.config, app.instance_path, "server")`. Calling it again replaces what it set up."""
    folder = directory(config, instance)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    path = folder / f"{name}.log"
    close()
    to_file = RotatingFileHandler(path, maxBytes=int(config.get("LOG_MAX_BYTES", 1_000_000)),
                                  backupCount=int(config.get("LOG_BACKUPS", 5)), encoding="utf-8",
                                  delay=True)
    to_stderr = _Stderr()
    to_stderr.setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in (to_file, to_stderr):
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(NoPersonalData())
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(str(config.get("LOG_LEVEL", "INFO")).upper())
    # The development server's request lines carry query strings (a search for a name).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return path


def close() -> None:
    """Remove and close the handlers `setup` added."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()
