"""Central's duplicate persons: the pairs the finder proposes, merging a pair or marking it "not the
same person", undoing a merge, and a person's page with every record linked to them."""

from __future__ import annotations

import logging
import threading
from datetime import date

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import format_date, gettext, lazy_gettext
from flask_wtf import FlaskForm

from fieldapp.domain import dedup, roles
from fieldapp.domain import persons as rules
from fieldapp.domain.records import is_uuid
from fieldapp.forms import display, schema
from fieldapp.storage import db as storage_db
from fieldapp.storage import persons as store
from fieldapp.storage import records
from fieldapp.web import audit
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db
from fieldapp.web.errors import render_error

bp = Blueprint("persons", __name__, url_prefix="/<lang>/central/persons")
log = logging.getLogger(__name__)

PAGE_SIZE = 20
REFUSALS = {
    "bad_pair": (400, lazy_gettext("This request does not name two different persons. Go back to the "
                                   "list of proposed pairs and use its buttons.")),
    "unknown_person": (404, lazy_gettext("One of these persons was not found: their record may have "
                                         "been deleted. Reload the list.")),
    "not_proposed": (409, lazy_gettext("This pair is not among the proposed pairs. Look again for "
                                       "duplicates, then judge the pairs it proposes.")),
    "judged": (409, lazy_gettext("This pair was judged already (merged, or marked as not the same "
                                 "person), perhaps by someone else meanwhile. Reload the list.")),
    "already_merged": (409, lazy_gettext("One of these persons was merged into another person "
                                         "meanwhile. Reload the list.")),
    "same_person": (409, lazy_gettext("These records are one person already.")),
    "not_merged": (409, lazy_gettext("These two persons are not merged: there is nothing to undo. "
                                     "Reload the list of merges.")),
    "changed": (409, lazy_gettext("Someone judged this pair at the same moment. Reload the list and "
                                  "check their verdict.")),
}


only_in(bp, "central")


def _refused(code: str):
    status, text = REFUSALS[code]
    return render_error(status, text)


def _card(record: dict, linked: int) -> dict:
    """What the pages show of a person, in the reader's language."""
    intake = schema.get("intake").fields_by_name
    answers = record["answers"]
    document = " ".join(filter(None, (display.value(intake["doc_type"], answers.get("doc_type"))
                                      if answers.get("doc_number") else "", answers.get("doc_number"))))
    return {
        "id": rules.person_id(record), "title": record["title"], "post": record["post"],
        "birth_date": display.value(intake["birth_date"], answers.get("birth_date")),
        "estimated_age": answers.get("estimated_age"),
        "nationality": display.value(intake["nationality"], answers.get("nationality")),
        "document": document, "records": linked,
    }


def _cards(ids: list[str]) -> dict[str, dict]:
    """Each person as their own records describe them (not as the person they were merged into)."""
    db = get_db()
    described, linked = records.persons(db, ids), store.counts(db, ids)
    return {i: _card(r, linked[i]) for i, r in described.items()}


@bp.get("/")
@allow(*roles.CENTRAL_ANALYSTS)
def pairs():
    db = get_db()
    found = store.proposals(db)
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    shown = found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    cards = _cards([i for p in shown for i in (p.a, p.b)])
    return render_template(
        "central/persons.html", run=store.last_run(db), total=len(found), page=page, pages=pages,
        looking=looking(current_app.config["DATABASE"]) is not None,
        pairs=[(p, cards[p.a], cards[p.b]) for p in shown if p.a in cards and p.b in cards],
        reasons=dedup.REASONS, form=FlaskForm())


@bp.post("/look-again")
@allow(*roles.CENTRAL_ANALYSTS)
def look_again():
    if not FlaskForm().validate_on_submit():
        abort(400)
    if start_looking(current_app.config["DATABASE"], by=g.user["username"]):
        flash(gettext("Looking for duplicates. It takes a few seconds for every 10,000 persons: "
                      "reload this page to see the pairs found."), "success")
    else:
        flash(gettext("Someone is looking for duplicates already: reload this page in a moment."), "info")
    return redirect(url_for(".pairs"), 303)


# Looking takes about half a minute at 100,000 persons: longer than a person should wait for a page,
# so it runs in a thread of the server, one at a time per database; the page shows the last run.
_looking: dict[str, threading.Thread] = {}
_guard = threading.Lock()


def looking(database: str) -> threading.Thread | None:
    """The run of the finder going on for this database, if any."""
    thread = _looking.get(database)
    return thread if thread is not None and thread.is_alive() else None


def start_looking(database: str, *, by: str) -> bool:
    """Start the finder in the background unless it runs already; False if it does."""
    with _guard:
        if looking(database):
            return False
        thread = threading.Thread(target=_look, args=(database, by), daemon=True,
                                  name="fieldapp-duplicates")
        _looking[database] = thread
        thread.start()
    return True


def _look(database: str, by: str) -> None:
    db = storage_db.connect(database)
    try:
        store.look_again(db, by=by)
    except Exception as e:  # noqa: BLE001 - a background thread must report, not vanish
        log.error("looking for duplicate persons failed: %s", type(e).__name__)
    finally:
        db.close()


def _posted_pair() -> tuple[str, str] | None:
    a, b = request.form.get("a", ""), request.form.get("b", "")
    return (a, b) if is_uuid(a) and is_uuid(b) and a != b else None


def _why_not_open(a: str, b: str) -> str:
    """Why a pair is not among the open proposals."""
    db = get_db()
    if len(records.persons(db, [a, b])) < 2:
        return "unknown_person"
    now_is = store.canonical(db, [a, b])
    if now_is[a] == now_is[b]:
        return "same_person"
    if rules.pair(a, b) in store.judged(db):
        return "judged"
    return "already_merged" if now_is != {a: a, b: b} else "not_proposed"


def _judge(status: str, survivor: str, merged: str, pair: dedup.Pair | None = None):
    try:
        with storage_db.write(get_db()):
            store.set_verdict(get_db(), survivor, merged, status, by=g.user["username"],
                              score=pair.score if pair else 0, reasons=pair.reasons if pair else (),
                              device=current_app.config["DEVICE_ID"] or "central")
            audit.record(f"person.{status}", target=f"person:{survivor}",
                         details={"other": merged, "score": pair.score if pair else None})
    except store.VerdictRefused as e:
        return _refused(e.code)
    return None


@bp.post("/merge")
@allow(*roles.CENTRAL_ANALYSTS)
def merge():
    posted, survivor = _posted_pair(), request.form.get("survivor", "")
    if not FlaskForm().validate_on_submit() or posted is None or survivor not in posted:
        return _refused("bad_pair")
    pair = store.proposal(get_db(), *posted)
    if pair is None:
        return _refused(_why_not_open(*posted))
    merged = posted[1] if survivor == posted[0] else posted[0]
    if refusal := _judge(rules.MERGED, survivor, merged, pair):
        return refusal
    flash(gettext("Merged: the two are one person now. The posts receive the correction at their "
                  "next sync. To undo it, go to Merges."), "success")
    return redirect(url_for(".pairs"), 303)


@bp.post("/distinct")
@allow(*roles.CENTRAL_ANALYSTS)
def distinct():
    posted = _posted_pair()
    if not FlaskForm().validate_on_submit() or posted is None:
        return _refused("bad_pair")
    pair = store.proposal(get_db(), *posted)
    if pair is None:
        return _refused(_why_not_open(*posted))
    if refusal := _judge(rules.DISTINCT, pair.a, pair.b, pair):
        return refusal
    flash(gettext("Marked as not the same person: this pair is not proposed again."), "success")
    return redirect(url_for(".pairs"), 303)


@bp.get("/merges")
@allow(*roles.CENTRAL_ANALYSTS)
def merges():
    found = store.verdicts(get_db(), rules.MERGED)
    cards = _cards(list({i for v in found for i in (v["survivor"], v["merged"])}))
    return render_template("central/person_merges.html", merges=found, cards=cards, form=FlaskForm())


@bp.post("/merges/undo")
@allow(*roles.CENTRAL_ANALYSTS)
def undo():
    posted = _posted_pair()
    if not FlaskForm().validate_on_submit() or posted is None:
        return _refused("bad_pair")
    try:
        standing = store.verdict(get_db(), *posted)
    except store.VerdictRefused as e:
        return _refused(e.code)
    if standing is None or standing["status"] != rules.MERGED:
        return _refused("not_merged")
    if refusal := _judge(rules.UNMERGED, *posted):
        return refusal
    flash(gettext("Merge undone: the two are separate persons again, at the posts too after their "
                  "next sync."), "success")
    return redirect(url_for(".merges"), 303)


def _shown(record: dict, parents: dict, courses: dict) -> tuple[str, str]:
    """(what names a record, its page) on a person's page."""
    if not record["parent"]:
        return record["title"], url_for("records.show", uuid=record["uuid"])
    parent = parents.get(record["parent"])
    if parent is None:
        return record["uuid"][:8], ""
    if parent["form"] == "session":
        course = courses.get(parent["parent"])
        day = parent["answers"].get("date", "")
        return (f"{course['title'] if course else ''} · {format_date(date.fromisoformat(day), 'medium')}",
                url_for("trainings.course", uuid=parent["parent"]))
    return parent["title"], url_for("trainings.course", uuid=parent["uuid"])


@bp.get("/<person>")
@allow(*roles.CENTRAL_ANALYSTS)
def person(person):
    db = get_db()
    record = records.get(db, person) if is_uuid(person) else None
    if record is None or record["form"] not in rules.PERSON_FORMS:
        abort(404)
    now_is = store.canonical(db, [rules.person_id(record)])[rules.person_id(record)]
    if now_is != person:  # merged into another, or an intake of a registered participant
        return redirect(url_for(".person", person=now_is))
    ids = store.group(db, person)
    cards = _cards(ids)
    if person not in cards:
        abort(404)
    linked = store.linked(db, ids)
    definitions = {r["form"]: schema.get(r["form"], r["form_version"]) for r in linked}
    # An enrolment, mark or certificate is shown by its course (and a mark by its session's day).
    parents = {r["parent"]: records.get(db, r["parent"]) for r in linked if r["parent"]}
    courses = {s["parent"]: records.get(db, s["parent"]) for s in parents.values()
               if s and s["form"] == "session"}
    shown = {r["uuid"]: _shown(r, parents, courses) for r in linked}
    verdicts = [v for v in store.verdicts(db) if v["survivor"] in ids or v["merged"] in ids]
    named = records.persons(db, [i for v in verdicts for i in (v["survivor"], v["merged"])])
    return render_template("central/person.html", card=cards[person], ids=ids,
                           people=[cards[i] for i in ids if i in cards], linked=linked, shown=shown,
                           definitions=definitions, person_id=rules.person_id, verdicts=verdicts,
                           named={i: r["title"] for i, r in named.items()})
