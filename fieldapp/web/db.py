"""The request's database connection: opened on first use, kept on `g`, closed on teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlite_utils import Database

from fieldapp.storage.db import connect


def get_db() -> Database:
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(exception=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
