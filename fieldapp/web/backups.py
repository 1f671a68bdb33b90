"""The field server's backup page: back up now to a folder (a USB stick), with live progress;
when the last backup was made; whether scheduled backups are on."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from fieldapp import backups
from fieldapp.backups import jobs
from fieldapp.domain import roles
from fieldapp.web import audit
from fieldapp.web.access import allow, only_in

bp = Blueprint("backups", __name__, url_prefix="/<lang>/backup")
only_in(bp, "field")

PHASES = {"copy": lazy_gettext("Copying"), "check": lazy_gettext("Checking"),
          "encrypt": lazy_gettext("Encrypting"), "done": lazy_gettext("Done")}


def _folder(form, field):
    path = Path((field.data or "").strip())
    if not path.is_absolute() or not path.is_dir():
        raise ValidationError(backups.message("no_folder", folder=str(path)))


def _passphrase(form, field):
    try:
        backups.check_passphrase(field.data or "", form.repeat.data or "")
    except backups.BackupError as e:
        raise ValidationError(e.message()) from None


class BackupForm(FlaskForm):
    folder = StringField(lazy_gettext("Folder"), validators=[DataRequired(), Length(max=500), _folder],
                         description=lazy_gettext("Where to write the backup, such as the USB "
                                                  "stick's folder (E:\\ on Windows, /media/… on "
                                                  "Linux)."))
    passphrase = PasswordField(lazy_gettext("Passphrase"), validators=[DataRequired(), Length(max=200),
                                                                      _passphrase],
                               description=lazy_gettext("At least 10 characters. Without it the "
                                                        "backup cannot be restored, by anyone: "
                                                        "keep it apart from the USB stick."))
    repeat = PasswordField(lazy_gettext("Repeat the passphrase"), validators=[DataRequired()])


def default_folder() -> str:
    return current_app.config["BACKUP_DIR"] or str(Path(current_app.instance_path) / "backups")


def error_message(job) -> str:
    if not job or not job.error:
        return ""
    if job.error == "failed":
        return gettext("The backup stopped because of a problem on this laptop. Try again; if it "
                       "happens again, run `fieldapp doctor`.")
    return backups.message(job.error, **job.error_params)


def _page(form=None, status: int = 200):
    app = current_app._get_current_object()
    job = jobs.current(app)
    if form is None:
        form = BackupForm(folder=default_folder())
    instance = Path(app.instance_path)
    return render_template(
        "backup/index.html", form=form, job=job, job_error=error_message(job), phases=PHASES,
        last=backups.last_backup(instance), schedule_dir=app.config["BACKUP_DIR"],
        schedule_hours=app.config["BACKUP_EVERY_HOURS"], schedule_keep=app.config["BACKUP_KEEP"],
        schedule_key=(instance / backups.KEY_FILE).exists(),
    ), status


@bp.get("/")
@allow(*roles.BACKUP_OPERATORS)
def index():
    return _page()


@bp.post("/run")
@allow(*roles.BACKUP_OPERATORS)
def run():
    if default_folder() == str(Path(current_app.instance_path) / "backups"):
        Path(default_folder()).mkdir(exist_ok=True)
    form = BackupForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _page(form, 400)
    if not jobs.start(current_app._get_current_object(), folder=form.folder.data.strip(),
                      passphrase=form.passphrase.data, started_by=g.user["username"],
                      actor=audit.actor()):
        flash(gettext("A backup is running already: its progress is below."), "info")
    return redirect(url_for(".index"), 303)


@bp.get("/progress")
@allow(*roles.BACKUP_OPERATORS)
def progress():
    job = jobs.current(current_app._get_current_object())
    if job is None:
        return jsonify({"ok": True, "job": None})
    data = job.as_dict()
    data["error_message"] = error_message(job)
    data["phase_label"] = str(PHASES.get(data["phase"], ""))
    return jsonify({"ok": True, "job": data})
