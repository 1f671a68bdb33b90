"""The diagnostics page: this server's health, each problem with what to do, and the support file
(logs, diagnostics, settings without secrets) to send to the central office."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, g, render_template, send_file
from flask_babel import gettext
from flask_wtf import FlaskForm

from fieldapp import diagnostics
from fieldapp.domain import roles
from fieldapp.web.access import allow

bp = Blueprint("diagnostics", __name__, url_prefix="/<lang>/diagnostics")


class BundleForm(FlaskForm):
    pass


def _report() -> diagnostics.Report:
    # quick_check: integrity_check reads every index too, too slow for a page on a large database.
    return diagnostics.gather(current_app.config, current_app.instance_path, full=False)


@bp.get("/")
@allow(*roles.DIAGNOSTICS)
def index():
    report = _report()
    problems = [diagnostics.message(f, gettext) for f in report.findings]
    return render_template("diagnostics.html", report=report, problems=problems,
                           rows=diagnostics.rows(report, gettext, g.lang), form=BundleForm())


@bp.post("/bundle")
@allow(*roles.DIAGNOSTICS)
def bundle():
    if not BundleForm().validate_on_submit():
        abort(400)
    data = io.BytesIO()
    diagnostics.write_bundle(data, _report(), current_app.config, current_app.instance_path, gettext)
    data.seek(0)
    name = f"fieldapp-support-{current_app.config['POST']}-{datetime.now(UTC):%Y%m%d-%H%M}.zip"
    response = send_file(data, mimetype="application/zip", as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "no-store"  # logs and settings: no copy kept on the way
    return response
