"""The central server's pages: the devices of every post and how their syncs went, registering and
revoking devices, the conflicts to resolve, and importing a post's sync file."""

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
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import FileField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from fieldapp.domain import accounts, roles
from fieldapp.forms import display, schema
from fieldapp.forms.builder import answers_as_formdata
from fieldapp.forms.messages import message
from fieldapp.forms.validate import validate
from fieldapp.storage import records
from fieldapp.storage import sync as store
from fieldapp.storage.db import write
from fieldapp.web import audit
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db
from fieldapp.web.headers import body_limit
from sync import client, protocol, server
from sync.messages import error_text

bp = Blueprint("central", __name__, url_prefix="/<lang>/central")


def _post_code(form, field):
    field.data = (field.data or "").strip().upper()
    # The central server's own post holds its staff's accounts: no device may pull them.
    if accounts.check_post("officer", field.data) or field.data == current_app.config["POST"]:
        raise ValidationError(gettext("A post code is 1 to 30 capital letters, digits, - or _."))


class DeviceForm(FlaskForm):
    post = StringField(lazy_gettext("Post"), validators=[DataRequired(), _post_code])
    name = StringField(lazy_gettext("Device name"), validators=[DataRequired(), Length(max=80)],
                       description=lazy_gettext("So people can tell devices apart, e.g. "
                                                "\"Laptop 2, Cúcuta\"."))
    replaces = SelectField(lazy_gettext("Replaces"), default="", validate_choice=False,
                           description=lazy_gettext("A lost, stolen or broken laptop of the same post "
                                                    "that this one replaces: it is revoked at once, "
                                                    "and this one receives the post's records, "
                                                    "courses and accounts at its first sync."))

    def validate_replaces(self, field):
        if not field.data:
            return
        old = store.device(get_db(), field.data)
        if old is None or old["post"] != self.post.data:
            raise ValidationError(gettext("Choose a device of the same post."))


class BundleForm(FlaskForm):
    bundle = FileField(lazy_gettext("Sync file from a post"), validators=[DataRequired()])


only_in(bp, "central")


@bp.get("/")
@allow(*roles.CENTRAL_DASHBOARD)
def dashboard(bundle_form=None, status=200):
    devices = store.devices(get_db())
    for d in devices:
        d["receipt"] = json.loads(d["last_receipt"]) if d["last_receipt"] else None
        d["clock_skewed"] = client.clock_skewed(d["clock_offset"])
    return render_template("central/dashboard.html", devices=devices, short=protocol.short,
                           open_conflicts=store.open_conflicts(get_db()),
                           bundle_form=bundle_form or BundleForm(), form=FlaskForm()), status


@bp.route("/devices/new", methods=["GET", "POST"])
@allow(*roles.DEVICE_ADMINS)
def new_device():
    form = DeviceForm()
    form.replaces.choices = [("", gettext("None: an additional device"))] + [
        (d["id"], f"{d['post']} · {d['name']} ({d['status']})") for d in store.devices(get_db())
        if d["status"] != "revoked"]
    if form.validate_on_submit():
        with write(get_db()):
            device_id, code = server.register(get_db(), post=form.post.data, name=form.name.data.strip(),
                                              by=g.user["username"], replaces=form.replaces.data or None)
            audit.record("device.registered", target=f"device:{device_id}",
                         details={"post": form.post.data})
            if form.replaces.data:
                audit.record("device.replaced", target=f"device:{form.replaces.data}",
                             details={"by": device_id})
        return render_template("central/device_code.html", device=store.device(get_db(), device_id),
                               code=code)
    return render_template("central/device_form.html", form=form), 400 if form.errors else 200


@bp.post("/devices/<device_id>/revoke")
@allow(*roles.DEVICE_ADMINS)
def revoke(device_id):
    if not FlaskForm().validate_on_submit():
        abort(400)
    device = store.device(get_db(), device_id) or abort(404)
    with write(get_db()):
        revoked = store.revoke(get_db(), device_id)
        if revoked:
            audit.record("device.revoked", target=f"device:{device_id}", details={"post": device["post"]})
    if revoked:
        flash(gettext("Device %(name)s of post %(post)s revoked: it can no longer sync.",
                      name=device["name"], post=device["post"]), "success")
    return redirect(url_for(".dashboard"), 303)


@bp.post("/bundles")
@allow(*roles.CENTRAL_DASHBOARD)
@body_limit("SYNC_MAX_BUNDLE")
def import_bundle():
    form = BundleForm()
    if not form.validate_on_submit():
        return dashboard(form, 400)
    try:
        data, receipt = server.import_bundle(get_db(), form.bundle.data.read())
    except client.SyncError as e:
        form.bundle.errors = [error_text(e.code, e.message, e.status, gettext)]
        return dashboard(form, 400)
    audit.record("sync.bundle_imported", target=f"device:{receipt['device']}",
                 details=server.receipt_details(receipt))
    name = f"fieldapp-{receipt['post']}-{date.today().isoformat()}.fieldapp-receipt"
    return Response(data, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.get("/conflicts")
@allow(*roles.CONFLICT_RESOLVERS)
def conflicts():
    found = store.conflicts(get_db())
    return render_template("central/conflicts.html", conflicts=found,
                           definitions={c["form"]: schema.get(c["form"]) for c in found})


def _comparison(conflict: dict, head: dict, definition) -> list[tuple]:
    """(field, central's text, the post's text) for each field the two versions answer differently."""
    names = set(conflict["fields"]) | {n for n in set(head["answers"]) | set(conflict["answers"])
                                       if head["answers"].get(n) != conflict["answers"].get(n)}
    return [(f, display.value(f, head["answers"].get(f.name)),
             display.value(f, conflict["answers"].get(f.name)))
            for f in definition.answer_fields if f.name in names]


@bp.route("/conflicts/<int:conflict_id>", methods=["GET", "POST"])
@allow(*roles.CONFLICT_RESOLVERS)
def conflict(conflict_id):
    db = get_db()
    found = store.conflict(db, conflict_id) or abort(404)
    head = records.get(db, found["uuid"])
    definition = schema.get(head["form"], head["form_version"])
    rows = _comparison(found, head, definition)
    errors = []
    if request.method == "POST":
        form = FlaskForm()
        if not form.validate_on_submit() or found["status"] != "open":
            abort(400 if found["status"] == "open" else 409)
        whole = request.form.get("whole")  # "post": take the post's version as it is, delete or not
        choices = {f.name: "post" if whole == "post" else request.form.get(f"choose-{f.name}", "central")
                   for f, _, _ in rows}
        if any(v not in ("central", "post") for v in choices.values()):
            abort(400)
        answers = dict(head["answers"])
        for name, side in choices.items():
            if side == "post":
                if name in found["answers"]:
                    answers[name] = found["answers"][name]
                else:
                    answers.pop(name, None)
        deleted = bool(found["deleted"]) if whole == "post" else bool(head["deleted"])
        result = validate(definition, answers_as_formdata(answers), date.today())
        if deleted or (result.ok and result.answers == answers):
            sub = None
            if answers != head["answers"] or deleted != bool(head["deleted"]):
                sub = records.Submission(
                    uuid=head["uuid"], definition=definition, answers=answers, post=head["post"],
                    device=current_app.config["DEVICE_ID"] or "central", user=g.user["username"],
                    base_revision=head["revision"], parent=head["parent"], person=head["person"],
                    deleted=deleted)
            with write(db):
                decision = store.resolve(db, conflict_id, sub, by=g.user["username"])
                if sub and decision.outcome == "stored":
                    audit.record("record.deleted" if deleted else "record.edited",
                                 target=f"record:{sub.uuid}", details={
                                     "form": definition.form, "revision": decision.revision,
                                     "conflict": conflict_id})
            if decision.outcome == "conflict":
                flash(gettext("The record changed while you were choosing. Review it again."), "error")
                return redirect(url_for(".conflict", conflict_id=conflict_id), 303)
            flash(gettext("Conflict resolved. The post receives the result at its next sync."), "success")
            return redirect(url_for(".conflicts"), 303)
        errors = [(definition.fields_by_name[n].label, message(e)) for n, e in result.errors.items()] or [
            (gettext("Answers"), gettext("These choices do not make a valid record together."))]
    return render_template("central/conflict.html", conflict=found, head=head, rows=rows,
                           definition=definition, form=FlaskForm(), errors=errors), 400 if errors else 200
