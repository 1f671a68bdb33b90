"""Central: data subject requests. Find a person, produce everything held about them (a printable
page in English or Spanish, and a download), correct one of their answers, or erase them."""

from __future__ import annotations

import io
import json
import zipfile
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

from fieldapp.domain import roles
from fieldapp.domain import subjects as rules
from fieldapp.domain.records import Outcome, is_uuid
from fieldapp.forms import display, schema
from fieldapp.forms.builder import answers_as_formdata
from fieldapp.forms.messages import message
from fieldapp.forms.validate import validate
from fieldapp.storage import records
from fieldapp.storage import subjects as store
from fieldapp.web import audit
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db
from fieldapp.web.errors import render_error

bp = Blueprint("subjects", __name__, url_prefix="/<lang>/central/subjects")
only_in(bp, "central")

MAX_QUERY = 100
# What a correction may change: the answers of a person's own records. Enrolments, marks and
# certificates are corrected on their course's pages.
CORRECTABLE = ("intake", "participant")
REASON_LABELS = {
    "request": lazy_gettext("The person asked for their data to be erased"),
    "consent_withdrawn": lazy_gettext("The person withdrew their consent"),
    "unlawful": lazy_gettext("The data should not have been collected"),
    "other": lazy_gettext("Another legal reason"),
}


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@allow(*roles.SUBJECT_REQUEST_HANDLERS)
def index():
    query = request.args.get("q", "")
    if len(query) > MAX_QUERY:
        return render_error(400, gettext("A search is at most %(n)s characters.", n=MAX_QUERY))
    found = store.find(get_db(), query) if query.strip() else []
    return render_template("central/subjects.html", query=query, found=found,
                           erasures=store.erasures(get_db())[:50], reasons=REASON_LABELS)


def _group(person: str) -> list[str]:
    ids = store.group(get_db(), person) if is_uuid(person) else []
    return ids or abort(404)


def _revisions(record: dict) -> list[dict]:
    """Each revision with the answers it changed, as (field, text) in the page's language."""
    shown, before = [], {}
    for rev in record["revisions"]:
        definition = schema.get(record["form"], rev["form_version"])
        changed = display.changed_fields(definition, before, rev["answers"], sensitive=True)
        shown.append({**rev, "changes": [(f, display.value(f, rev["answers"].get(f.name)))
                                         for f in changed]})
        before = rev["answers"]
    return shown


def _report(ids: list[str]) -> dict:
    """Everything held about the person, ready for the report's template."""
    db = get_db()
    held = store.held(db, ids)
    for record in held:
        record["definition"] = schema.get(record["form"], record["form_version"])
        record["shown"] = _revisions(record)
        for c in record["conflicts"]:
            c["rows"] = display.sections(record["definition"], c["answers"], sensitive=True)
    person = records.persons(db, [ids[0]]).get(ids[0])
    spoken = (person or {}).get("answers", {}).get("preferred_language", "")
    return {"ids": ids, "person": person, "held": held, "spoken": spoken,
            "generated": date.today().isoformat()}


@bp.get("/<person>")
@allow(*roles.SUBJECT_REQUEST_HANDLERS)
def report(person):
    ids = _group(person)
    if ids[0] != person:  # merged into another, or an intake of a registered participant
        return redirect(url_for(".report", person=ids[0]))
    context = _report(ids)
    audit.record("subject.produced", target=f"person:{ids[0]}",
                 details={"as": "page", "lang": g.lang, "records": len(context["held"])})
    return _no_store(Response(render_template(
        "central/subject.html", **context, form=FlaskForm(), reasons=REASON_LABELS,
        correctable=[r for r in context["held"] if r["form"] in CORRECTABLE and not r["deleted"]])))


@bp.get("/<person>/download")
@allow(*roles.SUBJECT_REQUEST_HANDLERS)
def download(person):
    """A ZIP of the report as a page (report.html) and every record with its revisions as JSON."""
    ids = _group(person)
    context = _report(ids)
    page = render_template("central/subject.html", **context, standalone=True, form=None,
                           reasons=REASON_LABELS, correctable=[])
    data = {"generated": context["generated"], "person": ids[0], "merged": ids[1:], "records": [
        {k: r[k] for k in ("uuid", "form", "form_version", "post", "device", "created_by", "created_at",
                           "updated_by", "updated_at", "revision", "deleted", "parent", "person")}
        | {"revisions": [{k: v for k, v in rev.items() if k != "hash"} for rev in r["revisions"]],
           "conflicts": r["conflicts"]} for r in context["held"]]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("report.html", page)
        z.writestr("records.json", json.dumps(data, ensure_ascii=False, indent=1))
    name = f"subject-{ids[0][:8]}-{g.lang}.zip"
    audit.record("subject.produced", target=f"person:{ids[0]}",
                 details={"as": "download", "lang": g.lang, "records": len(context["held"])})
    return _no_store(Response(buffer.getvalue(), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"'}))


@bp.post("/<person>/correct")
@allow(*roles.SUBJECT_REQUEST_HANDLERS)
def correct(person):
    ids = _group(person)
    if not FlaskForm().validate_on_submit():
        abort(400)
    uuid, name = request.form.get("record", ""), request.form.get("field", "")
    record = records.get(get_db(), uuid) if is_uuid(uuid) else None
    if record is None or record["deleted"] or record["form"] not in CORRECTABLE \
            or not rules.is_about(record, ids):
        return render_error(404, gettext("This record is not one of this person's records."))
    definition = schema.get(record["form"], record["form_version"])
    f = definition.fields_by_name.get(name)
    if f is None or f not in definition.answer_fields:
        return render_error(400, gettext("Choose one of the record's questions."))
    raw = request.form.get("value", "").strip()
    answers = answers_as_formdata(record["answers"])
    answers[name] = [v.strip() for v in raw.split(",") if v.strip()] if f.type == "multichoice" else raw
    result = validate(definition, answers, date.today())
    if not result.ok:
        problems = "; ".join(f"{gettext(definition.fields_by_name[n].label)}: {message(e)}"
                             for n, e in result.errors.items())
        return render_error(400, gettext("The correction was not saved: %(problems)s", problems=problems))
    decision = store.correct(get_db(), record, result.answers, by=g.user["username"],
                             device=current_app.config["DEVICE_ID"] or "central")
    if decision.outcome is Outcome.DUPLICATE:
        flash(gettext("Nothing changed: the record already had this answer."), "info")
    elif decision.outcome is Outcome.STORED:
        audit.record("subject.corrected", target=f"record:{record['uuid']}",
                     details={"person": ids[0], "question": name, "revision": decision.revision})
        flash(gettext("Corrected: revision %(n)s of the record. The post receives it at its next sync.",
                      n=decision.revision), "success")
    else:
        return render_error(409, gettext("The record changed meanwhile. Reload the page and try again."))
    return redirect(url_for(".report", person=ids[0]), 303)


@bp.post("/<person>/erase")
@allow(*roles.SUBJECT_REQUEST_HANDLERS)
def erase(person):
    """First the confirmation page (what will be erased), then, confirmed, the erasure."""
    ids = _group(person)
    if not FlaskForm().validate_on_submit():
        abort(400)
    reason, reference = request.form.get("reason", ""), request.form.get("reference", "")
    if errors := rules.check_request(reason, reference):
        return render_error(400, " ".join(gettext(e) for e in errors.values()))
    if request.form.get("confirm") != "yes":
        found = store.about(get_db(), ids)
        forms = {}
        for r in found:
            forms[r["form"]] = forms.get(r["form"], 0) + 1
        return render_template(
            "central/subject_erase.html", ids=ids, person=records.persons(get_db(), [ids[0]]).get(ids[0]),
            forms=forms, posts=sorted({r["post"] for r in found}), reason=reason,
            reference=reference.strip(), reasons=REASON_LABELS, form=FlaskForm())
    done = store.erase(get_db(), ids, reason=reason, reference=reference, by=g.user["username"],
                       device=current_app.config["DEVICE_ID"] or "central")
    audit.record("subject.erased", target=f"person:{ids[0]}",
                 details={"request": done["request"], "persons": ids, "reason": reason,
                          "reference": reference.strip()[:80], "records": done["records"],
                          "posts": done["posts"]})
    flash(gettext("Erased: %(n)s records at %(posts)s. The posts erase their copies at their next sync.",
                  n=done["records"], posts=", ".join(done["posts"])), "success")
    return redirect(url_for(".index"), 303)
