"""The JSON endpoints a device's outbox uses (hop 1 of DESIGN.md): a fresh CSRF token, the replay
of queued records under the resubmission contract, and the pages to keep for working offline."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, jsonify, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf.csrf import generate_csrf
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from fieldapp.domain import persons, roles
from fieldapp.domain.records import Outcome, is_uuid
from fieldapp.web import capture, records, trainings
from fieldapp.web.access import allow
from fieldapp.web.errors import json_error

bp = Blueprint("api", __name__, url_prefix="/<lang>/api")
log = logging.getLogger(__name__)

MAX_RECORDS = 50  # per request; a device sends a longer outbox in several requests
MAX_FIELDS = 200
MAX_VALUES = 50
KINDS = ("intake", "participant", "mark")

MALFORMED = lazy_gettext("This record was not sent in a form this server understands. Discard "
                         "it and enter it again.")
GONE = lazy_gettext("The course or session of this record no longer exists on this server, or "
                    "belongs to another post.")
FAILED = lazy_gettext("The server could not store this record. Send it again later; if it keeps "
                      "failing, tell your supervisor.")


SESSION_CLOSED = lazy_gettext("The session this walk-in came to is no longer open (it was cancelled "
                              "or moved to another course). Register the person from the course "
                              "page instead, then discard this record.")


class Refused(Exception):
    """A record of the replay refused as a whole: `Refused(code, message)`."""

    def __init__(self, code: str, message):
        super().__init__(code)
        self.code, self.message = code, message


class Malformed(Refused):
    """A record that is not shaped as the app's pages send them."""

    def __init__(self):
        super().__init__("malformed", MALFORMED)


@bp.get("/token")
@allow(*roles.RECORD_CAPTURERS)
def token():
    """A CSRF token for this session: a record queued hours ago is sent with a fresh one."""
    return jsonify({"ok": True, "token": generate_csrf(), "user": g.user["username"]})


@bp.post("/outbox")
@allow(*roles.RECORD_CAPTURERS)
def outbox():
    """Store queued records one by one; answer each with its outcome in the page's language.

    Each record is its own transaction and is committed before the answer is sent, so a lost
    answer means the device sends it again and gets `duplicate`: stored once, never lost.
    """
    try:
        payload = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # JSON nested deeper than Python parses: not records either
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        return json_error(400, "bad_payload", gettext(
            "What was sent is not a list of records: expected JSON {\"records\": [...]}."))
    if len(payload["records"]) > MAX_RECORDS:
        return json_error(413, "too_many", gettext(
            "Too many records at once: send at most %(n)s per request.", n=MAX_RECORDS))
    return jsonify({"ok": True, "results": [_replay(r) for r in payload["records"]]})


def _replay(record) -> dict:
    uuid = record.get("uuid") if isinstance(record, dict) else None
    answer = {"uuid": uuid if is_uuid(uuid) else None}
    try:
        result = _capture(record)
    except Refused as refusal:
        return {**answer, "outcome": "rejected", "code": refusal.code, "message": str(refusal.message)}
    except HTTPException:  # a course or session not found, or not this user's post
        return {**answer, "outcome": "rejected", "code": "not_found", "message": str(GONE)}
    except Exception as e:  # one record's failure must not block the others
        # Its transaction was rolled back (storage.db.write). Never log the message: personal data.
        kind = record.get("kind") if isinstance(record, dict) else None  # sent by the device: one
        log.error("replay of a %s record failed: %s", kind if kind in KINDS else "?",  # of KINDS only
                  type(e).__name__)
        return {**answer, "outcome": "rejected", "code": "server_error", "message": str(FAILED)}
    answer.update(result.extra, outcome=result.outcome.value)
    if result.saved:
        answer["location"] = result.location
        return answer
    form = result.form
    if "code" not in answer:
        answer["code"] = ("conflict" if result.outcome is Outcome.CONFLICT
                          else "refused" if result.problem else "invalid")
    answer["message"] = str(result.problem) if result.problem else gettext(
        "Some answers need correcting before this record can be stored.")
    if form is not None:
        answer["errors"] = {f.name: form[f.name].errors[0]
                            for f in form.definition.answer_fields if form[f.name].errors}
        answer["problems"] = [str(m) for m in form.form_errors_extra]
    return answer


def _formdata(record: dict) -> MultiDict:
    """The record's fields as the form would have posted them."""
    fields = record.get("fields")
    if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
        raise Malformed
    data = MultiDict()
    for name, value in fields.items():
        values = value if isinstance(value, list) else [value]
        if len(name) > 64 or len(values) > MAX_VALUES or not all(isinstance(v, str) for v in values):
            raise Malformed
        data.setlist(name, values)
    return data


def _capture(record) -> capture.Capture:
    if not isinstance(record, dict) or record.get("kind") not in KINDS or not is_uuid(record.get("uuid")):
        raise Malformed
    data = _formdata(record)
    kind = record["kind"]
    if kind == "mark":
        session, course = trainings.session_and_course(_uuid(record, "session"))
        value = data.get("mark", "")
        if record["uuid"] != persons.mark_uuid(session["uuid"], value.partition(":")[0]):
            raise Malformed
        return trainings.capture_mark(session, course, value)
    if data.get("uuid") != record["uuid"]:
        raise Malformed
    if kind == "intake":
        return records.capture_intake(data, csrf=False)
    course = capture.visible(_uuid(record, "course"), "course")
    walk_in = trainings.walk_in_session(course, _uuid(record, "session")) if record.get("session") else None
    if record.get("session") and walk_in is None:
        raise Refused("session_closed", SESSION_CLOSED)
    return trainings.capture_participant(course, walk_in, data, csrf=False)


def _uuid(record: dict, key: str) -> str:
    value = record.get(key)
    if not is_uuid(value):
        raise Malformed
    return value


@bp.get("/shell")
@allow(*roles.ROLES)
def shell():
    """The pages this user needs to keep working offline, in every language: the service
    worker keeps them. Lists and record pages are never among them."""
    user = g.user
    pages = []
    today = trainings.open_sessions_today(user["post"]) if user["role"] in roles.RECORD_CAPTURERS else []
    for lang in current_app.config["LANGUAGES"]:
        pages.append(url_for("main.home", lang=lang))
        if user["role"] in roles.RECORD_CAPTURERS:
            pages += [url_for("pwa.outbox", lang=lang), url_for("records.new", lang=lang)]
        for s in today:
            pages.append(url_for("trainings.checkin", uuid=s["uuid"], lang=lang))
            pages.append(url_for("trainings.new_participant", uuid=s["parent"], session=s["uuid"],
                                 lang=lang))
    return jsonify({"ok": True, "user": user["username"], "pages": pages})
