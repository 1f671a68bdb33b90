"""The field server's sync page: enrol at central, sync now with live progress, see the receipt,
what central refused and why, and carry a bundle when the post has no internet."""

from __future__ import annotations

import json
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import FileField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from fieldapp.domain import roles
from fieldapp.forms import schema
from fieldapp.storage import sync as store
from fieldapp.web import audit
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db
from fieldapp.web.headers import body_limit
from sync import bundle, client, jobs, protocol
from sync.messages import error_text

bp = Blueprint("field_sync", __name__, url_prefix="/<lang>/sync")

PHASES = {"push": lazy_gettext("Sending"), "pull": lazy_gettext("Receiving"),
          "finish": lazy_gettext("Finishing"), "done": lazy_gettext("Done")}


def _https_url(form, field):
    value = (field.data or "").strip()
    if not (value.startswith("https://") or value.startswith("http://")) or " " in value:
        raise ValidationError(gettext("Enter the address the central office gave you, starting "
                                      "with https://"))


class EnrolForm(FlaskForm):
    url = StringField(lazy_gettext("Central server address"),
                      validators=[DataRequired(), Length(max=300), _https_url])
    code = PasswordField(lazy_gettext("Enrolment code"), validators=[DataRequired(), Length(max=40)],
                         description=lazy_gettext("The one-time code from the central office, "
                                                  "like K7QM-X3PA-9RTE."))


class ReceiptForm(FlaskForm):
    receipt = FileField(lazy_gettext("Receipt file from the central office"),
                        validators=[DataRequired()])


only_in(bp, "field")


def error_message(error: dict | None) -> str:
    if not error:
        return ""
    if error["code"] == "failed":
        return gettext("The sync stopped because of a problem on this laptop. Try again; if it "
                       "happens again, tell the central office the time it happened.")
    return error_text(error["code"], error["message"], error["status"], gettext)


def _status() -> dict:
    db = get_db()
    state = store.state(db)
    receipt = json.loads(state["last_receipt"]) if state.get("last_receipt") else None
    offset = float(state["clock_offset"]) if state.get("clock_offset") else None
    central_forms = json.loads(state.get("central_forms", "{}"))
    ours = {name: version for (name, version) in schema.definitions()}
    newer = sorted(name for name, version in central_forms.items() if version > ours.get(name, 0))
    return {
        "state": state, "enrolled": bool(state.get("token")), "receipt": receipt,
        "pending": store.pending_count(db, int(state.get("push_checkpoint", 0))),
        "outcomes": store.outcomes(db), "clock_offset": offset,
        "clock_skewed": client.clock_skewed(offset), "newer_forms": newer,
    }


def _page(enrol_form=None, receipt_form=None, status: int = 200):
    job = jobs.current(current_app._get_current_object())
    return render_template(
        "sync/field.html", **_status(), job=job, job_error=error_message(job.error) if job else "",
        enrol_form=enrol_form or EnrolForm(), receipt_form=receipt_form or ReceiptForm(),
        phases=PHASES, short=protocol.short,
    ), status


@bp.get("/")
@allow(*roles.SYNC_OPERATORS)
def index():
    return _page()


@bp.post("/enrol")
@allow(*roles.SYNC_OPERATORS)
def enrol():
    form = EnrolForm()
    if form.validate_on_submit():
        settings = client.Settings(url=form.url.data.strip(), lang=g.lang,
                                   verify=current_app.config["SYNC_CA_BUNDLE"] or True,
                                   attempts=2, read_timeout=30)
        try:
            answer = client.enrol(get_db(), settings, form.code.data, current_app.config["POST"])
        except client.SyncError as e:
            form.code.errors = [error_text(e.code, e.message, e.status, gettext)]
        else:
            audit.record("sync.enrolled", target=f"device:{answer['device']}",
                         details={"post": answer["post"], "central": settings.url[:200]})
            flash(gettext("Enrolled at the central server as device %(name)s.", name=answer["name"]),
                  "success")
            return redirect(url_for(".index"), 303)
    return _page(enrol_form=form, status=400)


@bp.post("/run")
@allow(*roles.SYNC_OPERATORS)
def run():
    if not FlaskForm().validate_on_submit():
        abort(400)
    if not _status()["enrolled"]:
        abort(409)
    if not jobs.start(current_app._get_current_object(), lang=g.lang, started_by=g.user["username"],
                      actor=audit.actor()):
        flash(gettext("A sync is running already: its progress is below."), "info")
    return redirect(url_for(".index"), 303)


@bp.get("/progress")
@allow(*roles.SYNC_OPERATORS)
def progress():
    job = jobs.current(current_app._get_current_object())
    if job is None:
        return jsonify({"ok": True, "job": None})
    data = job.as_dict()
    data["error_message"] = error_message(job.error)
    data["phase_label"] = str(PHASES.get(data["phase"], ""))
    if data["receipt"]:
        data["receipt"]["short"] = protocol.short(data["receipt"]["digest"])
    return jsonify({"ok": True, "job": data})


@bp.post("/bundle")
@allow(*roles.SYNC_OPERATORS)
def export_bundle():
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        data, summary = bundle.export(get_db(), current_app.config["SYNC_BATCH_SIZE"])
    except client.SyncError as e:
        if e.code != "nothing_pending":
            abort(409)
        flash(error_text(e.code, "", 0, gettext), "info")
        return redirect(url_for(".index"), 303)
    audit.record("sync.bundle_exported", details=bundle.audit_details(summary))
    name = f"fieldapp-{current_app.config['POST']}-{date.today().isoformat()}.fieldapp-bundle"
    return Response(data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.post("/receipt")
@allow(*roles.SYNC_OPERATORS)
@body_limit("SYNC_MAX_BUNDLE")
def import_receipt():
    form = ReceiptForm()
    if form.validate_on_submit():
        try:
            receipt = bundle.import_receipt(get_db(), form.receipt.data.read())
        except client.SyncError as e:
            form.receipt.errors = [error_text(e.code, e.message, e.status, gettext)]
        else:
            audit.record("sync.receipt_imported", details=bundle.audit_details(receipt))
            if receipt["advanced"]:
                flash(gettext("Receipt imported: central confirmed %(n)s records.", n=receipt["records"]),
                      "success")
            else:
                flash(gettext("This receipt was imported before: nothing changed."), "info")
            return redirect(url_for(".index"), 303)
    return _page(receipt_form=form, status=400)
