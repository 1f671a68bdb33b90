"""Central: exports that run in the background with a progress bar, downloads for the person who
asked, and the audit log of every export."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext
from flask_wtf import FlaskForm

from fieldapp import exports
from fieldapp.domain import roles
from fieldapp.forms import export
from fieldapp.storage import db as storage_db
from fieldapp.storage import exports as store
from fieldapp.web import audit
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db
from fieldapp.web.merged import filter_context, form_titles, parse_filter

bp = Blueprint("exports", __name__, url_prefix="/<lang>/central/exports")
log = logging.getLogger(__name__)

# Exports running in this process: id -> rows written so far.
_running: dict[str, int] = {}
_guard = threading.Lock()
_slots: dict[str, threading.BoundedSemaphore] = {}


only_in(bp, "central")


def _render(values, errors: dict, flt, filter_errors: dict, status: int = 200):
    db = get_db()
    with _guard:
        store.interrupted(db, set(_running))
    return render_template(
        "central/exports.html", form=FlaskForm(), picked=values, export_errors=errors,
        datasets=dataset_titles(), formats=FORMAT_TITLES,
        mine=store.log(db, username=g.user["username"], limit=20), audit=store.log(db, limit=100),
        hide_form=True,
        **filter_context(flt, filter_errors)), status


def dataset_titles() -> dict[str, str]:
    return {
        **form_titles(),
        exports.ATTENDANCE: export.N_("Attendance, one row per person and session"),
        exports.PARTICIPANTS: export.N_("Per-participant summary of each course"),
    }


FORMAT_TITLES = {"csv": export.N_("CSV (Excel, SPSS, R)"), "xlsx": export.N_("Excel workbook (XLSX)"),
                 "jsonl": export.N_("JSON Lines")}


@bp.get("/")
@allow(*roles.CENTRAL_ANALYSTS)
def new():
    flt, filter_errors = parse_filter(request.args)
    return _render(request.args, {}, flt, filter_errors, 400 if filter_errors else 200)


@bp.post("/")
@allow(*roles.CENTRAL_ANALYSTS)
def create():
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    args = request.form
    flt, filter_errors = parse_filter(args)
    choice = {name: (args.get(name) or "").strip() for name in
              ("dataset", "format", "labels", "lang", "headers", "profile", "purpose")}
    incremental = args.get("incremental") == "1"
    errors = exports.check(**choice, incremental=incremental)
    if errors or filter_errors:
        return _render(args, {k: gettext(v) for k, v in errors.items()}, flt, filter_errors, 400)
    req = exports.Request(
        dataset=choice["dataset"], format=choice["format"], purpose=choice["purpose"], flt=flt,
        incremental=incremental,
        options=export.Options(labels=choice["labels"], lang=choice["lang"], headers=choice["headers"],
                               profile=choice["profile"],
                               key=exports.pseudonym_key(current_app.config["SECRET_KEY"])))
    job = exports.start(get_db(), req, username=g.user["username"], actor=audit.actor())
    _launch(current_app._get_current_object(), job)
    return redirect(url_for(".show", export_id=job["id"]), 303)


def _launch(app: Flask, job: dict) -> None:
    with _guard:
        _running[job["id"]] = 0
        slots = _slots.setdefault(app.config["DATABASE"],
                                  threading.BoundedSemaphore(app.config["EXPORT_WORKERS"]))
    thread = threading.Thread(target=_run, args=(app, job, slots), daemon=True, name="fieldapp-export")
    thread.start()


def _run(app: Flask, job: dict, slots: threading.BoundedSemaphore) -> None:
    def progress(rows: int) -> None:
        _running[job["id"]] = rows

    with slots:
        db = storage_db.connect(app.config["DATABASE"])
        try:
            exports.run(db, job, Path(app.config["EXPORT_DIR"]), secret_key=app.config["SECRET_KEY"],
                        progress=progress)
        except Exception:
            log.exception("export %s failed", job["id"])  # the log names the export, never its rows
        finally:
            db.close()
            with _guard:
                _running.pop(job["id"], None)


def _mine(export_id: str) -> dict:
    """The export, if the person asking made it; 404 otherwise, so others' ids reveal nothing."""
    job = store.get(get_db(), export_id) if len(export_id) < 64 else None
    if job is None or job["username"] != g.user["username"]:
        abort(404)
    return job


def _state(job: dict) -> dict:
    rows = _running.get(job["id"], job["rows"])
    status = job["status"]
    if status == "running" and job["id"] not in _running:
        status, job["error"] = "failed", "interrupted"
    percent = min(99, rows * 100 // job["total"]) if job["total"] else 0
    return {"status": status, "rows": rows, "total": job["total"],
            "percent": 100 if status == "done" else percent,
            "download": url_for(".download", export_id=job["id"]) if status == "done" else None,
            "message": _status_text(status, rows, job["total"])}


def _status_text(status: str, rows: int, total: int) -> str:
    if status == "done":
        return gettext("Ready: %(rows)s rows.", rows=rows)
    if status == "failed":
        return gettext("The export stopped before it was finished. Start it again.")
    return gettext("Writing row %(rows)s of %(total)s…", rows=rows, total=total)


@bp.get("/<export_id>")
@allow(*roles.CENTRAL_ANALYSTS)
def show(export_id):
    job = _mine(export_id)
    return render_template("central/export.html", job=job, state=_state(job), datasets=dataset_titles(),
                           formats=FORMAT_TITLES)


@bp.get("/<export_id>/progress")
@allow(*roles.CENTRAL_ANALYSTS)
def progress(export_id):
    response = jsonify(_state(_mine(export_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<export_id>/download")
@allow(*roles.CENTRAL_ANALYSTS)
def download(export_id):
    job = _mine(export_id)
    path = Path(current_app.config["EXPORT_DIR"]) / (job["file"] or "")
    if job["status"] != "done" or not job["file"] or not path.is_file():
        abort(404)
    audit.record("export.downloaded", target=f"export:{export_id}",
                 details={"dataset": job["dataset"], "rows": job["rows"]})
    response = send_file(path, as_attachment=True, download_name=exports.download_name(job),
                         mimetype=exports.media_type(job["format"]))
    response.headers["Cache-Control"] = "no-store"
    return response
