"""Intake records: capture, list and search, view with history, edit as a new revision."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext

from fieldapp.domain import audit as audit_rules
from fieldapp.domain import roles
from fieldapp.domain.records import Outcome, is_uuid
from fieldapp.forms import display, schema
from fieldapp.forms.builder import TAMPERED
from fieldapp.storage import records, retention
from fieldapp.storage import sync as sync_store
from fieldapp.web import audit, capture
from fieldapp.web.access import allow
from fieldapp.web.db import get_db

bp = Blueprint("records", __name__, url_prefix="/<lang>")

FORM = "intake"
MAX_QUERY = 100


def _visible_record(uuid: str) -> tuple[dict, schema.FormDefinition]:
    """The record and the form it was captured with, if this user may see it; else 404."""
    record = capture.visible(uuid)
    definition = schema.get(record["form"], record["form_version"])
    if definition is None:  # captured with a form this version of fieldapp does not ship
        abort(404)
    return record, definition


def _render_form(form, *, title: str, record=None, status: int = 200):
    # A new intake works offline: saved to the device's outbox when the server is unreachable.
    outbox = None if record else {"kind": "intake", "label": list(capture.LABEL_FIELDS),
                                  "today": ["interview_date"]}
    return render_template("records/form.html", form=form, title=title, record=record,
                           outbox=outbox), status


# What an intake takes over from the participant registration of the same person.
FROM_PARTICIPANT = ("given_names", "first_surname", "second_surname", "sex", "birth_date_known",
                    "birth_date", "estimated_age", "nationality", "phone")


def _participant(uuid: str) -> dict | None:
    """A participant registration of the user's post, or None."""
    record = records.get(get_db(), uuid) if is_uuid(uuid) else None
    ok = record and record["form"] == "participant" and not record["deleted"]
    return record if ok and record["post"] == g.user["post"] else None


def capture_intake(formdata, *, csrf: bool = True) -> capture.Capture:
    """Validate and store a new intake posted by the form or replayed from a device's outbox."""
    form = capture.submitted_form(FORM, formdata, csrf=csrf)
    person = form.person.data or ""
    if person and not _participant(person):
        return capture.Capture(Outcome.REJECTED, form, str(TAMPERED))
    if not form.validate():
        return capture.Capture(Outcome.REJECTED, form)
    return capture.save(form, post=g.user["post"], person=person,
                        location=url_for("records.show", uuid=form.uuid.data))


@bp.route("/intake/new", methods=["GET", "POST"])
@allow(*roles.RECORD_CAPTURERS)
def new():
    title = gettext("New intake")
    if request.method == "GET":
        answers = {"interview_date": date.today().isoformat()}
        if participant := _participant(request.args.get("person", "")):
            given = participant["answers"]
            answers.update({k: given[k] for k in FROM_PARTICIPANT if k in given},
                           person=participant["uuid"])
        return _render_form(capture.blank_form(schema.get(FORM), **answers), title=title)
    result = capture_intake(request.form)
    if result.saved:
        return capture.saved_redirect(result)
    return _render_form(result.form, title=title, status=422)


@bp.get("/records")
@allow(*roles.RECORD_READERS)
def index():
    query = request.args.get("q", "")[:MAX_QUERY]
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before < 2**63:
        before = None
    size = current_app.config["PAGE_SIZE"]
    rows = records.search(get_db(), FORM, post=capture.own_post(), text=query, before=before,
                          limit=size + 1)
    return render_template(
        "records/list.html", rows=rows[:size], query=query,
        next_before=rows[size - 1]["id"] if len(rows) > size else None,
        total=None if query else records.count(get_db(), FORM, capture.own_post()),
    )


@bp.get("/records/<uuid>")
@allow(*roles.RECORD_READERS)
def show(uuid):
    record, definition = _visible_record(uuid)
    sensitive = roles.may_see_sensitive(g.user["role"])
    revisions = records.history(get_db(), uuid)
    shown = record
    wanted = request.args.get("revision", type=int)
    if wanted is not None:
        shown = next((r for r in revisions if r["revision"] == wanted), None) or abort(404)
    withheld = shown is not record and definition.is_anonymous(record["answers"])
    changes, previous = [], {}
    for rev in revisions:
        changes.append((rev, display.changed_fields(
            definition, previous, rev["answers"], sensitive=sensitive)))
        previous = rev["answers"]
    sections = [] if withheld else display.sections(definition, shown["answers"], sensitive=sensitive)
    if viewed := audit_rules.audited_sections(section for section, _ in sections):
        audit.record("record.viewed", target=f"record:{uuid}",
                     details={"form": record["form"], "revision": shown["revision"], "sections": viewed})
    return render_template(
        "records/view.html", record=record, shown=shown, definition=definition,
        corrected=_corrected_times(revisions),
        sections=sections,
        withheld=withheld, purged=retention.purged_at(get_db(), uuid),
        history=reversed(changes),
    )


def _corrected_times(revisions: list[dict]) -> dict[int, str]:
    """Central: capture times by central's clock, for revisions from devices whose clock was off
    by more than a minute at their last sync (records keep the time as the device gave it)."""
    if current_app.config["MODE"] != "central":
        return {}
    offsets = sync_store.clock_offsets(get_db(), {r["origin"] for r in revisions if r["origin"]})
    corrected = {}
    for r in revisions:
        offset = offsets.get(r["origin"])
        if offset is not None and abs(offset) > 60:
            try:
                made = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
            except ValueError:
                continue
            corrected[r["revision"]] = (made - timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return corrected


@bp.route("/records/<uuid>/edit", methods=["GET", "POST"])
@allow(*roles.RECORD_EDITORS)
def edit(uuid):
    record, definition = _visible_record(uuid)
    title = gettext("Correct intake")
    if request.method == "GET":
        return _render_form(capture.record_form(definition, record), title=title, record=record)
    form = capture.submitted_form(FORM, request.form)
    if form.uuid.data != uuid:
        form.form_errors_extra.append(str(TAMPERED))
    elif form.validate():
        result = capture.save(form, post=record["post"], location=url_for("records.show", uuid=uuid))
        if result.saved:
            return capture.saved_redirect(result)
    return _render_form(form, title=title, record=record, status=422)
