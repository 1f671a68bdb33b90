"""The request's database connection: each serving thread keeps its own, from one request to the
next, and hands it to a request on `g`.

Opening a connection per request cost every request a schema read and a cold page cache, and its
close, the last one, a checkpoint and the WAL's deletion before the answer went out. After a
request that wrote, a thread of its own copies the WAL back into the database instead
(`storage.db.checkpoint_soon`): no answer waits for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import Flask, current_app, g
from sqlite_utils import Database

from fieldapp.storage.db import checkpoint_soon, connect

# Databases a thread keeps a connection to: one in a server; tests run several apps in a thread.
KEPT_PER_THREAD = 4

_local = threading.local()


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


def release_db(exception=None) -> None:
    db = g.pop("db", None)
    if db is None:
        return
    if db.conn.in_transaction:  # never hand a transaction to the next request
        db.execute("ROLLBACK")
    if db._fieldapp_wrote:
        checkpoint_soon(db)


def init_app(app: Flask) -> None:
    app.teardown_appcontext(release_db)
