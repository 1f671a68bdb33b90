"""The request's database connection: each serving thread keeps its own, from one request to the
next, and hands it to a request on `g`.

Opening a connection per request cost every request a schema read and a cold page cache, and its
close, the last one, a checkpoint and the WAL's deletion before the answer went out. A kept
connection instead checkpoints once the answer of a request that wrote is on its way.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict

from flask import Flask, Response, current_app, g
from sqlite_utils import Database

from fieldapp.storage.db import checkpoint, connect

# Databases a thread keeps a connection to: one in a server; tests run several apps in a thread.
KEPT_PER_THREAD = 4

_local = threading.local()
log = logging.getLogger(__name__)


def _kept(path: str) -> Database:
    kept: OrderedDict[str, Database] = _local.__dict__.setdefault("connections", OrderedDict())
    db = kept.pop(path, None)
    if db is None:
        db = connect(path, serving=True)
        while len(kept) >= KEPT_PER_THREAD:
            kept.popitem(last=False)[1].close()
    kept[path] = db  # the most recently used last
    return db


def get_db() -> Database:
    if "db" not in g:
        g.db = _kept(current_app.config["DATABASE"])
    return g.db


def _checkpoint_after(response: Response) -> Response:
    db = g.get("db")
    if db is not None and db._fieldapp_wrote:
        response.call_on_close(lambda: _checkpoint(db))
    return response


def _checkpoint(db: Database) -> None:
    try:
        checkpoint(db)
    except sqlite3.Error as e:  # the answer is out; the next checkpoint copies what this did not
        log.warning("checkpoint after a request failed: %s", e)


def release_db(exception=None) -> None:
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:  # never hand a transaction to the next request
        db.execute("ROLLBACK")


def init_app(app: Flask) -> None:
    app.after_request(_checkpoint_after)
    app.teardown_appcontext(release_db)
