"""Training courses and their sessions: list, create, view, correct."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext

from fieldapp.domain import persons, roles, trainings
from fieldapp.domain.records import Outcome, is_uuid
from fieldapp.forms import display, schema
from fieldapp.forms.builder import TAMPERED, choice_label, form_class
from fieldapp.forms.messages import message
from fieldapp.forms.validate import Error
from fieldapp.storage import persons as person_store
from fieldapp.storage import records, users
from fieldapp.web import audit, capture
from fieldapp.web.access import allow
from fieldapp.web.db import get_db

bp = Blueprint("trainings", __name__, url_prefix="/<lang>")


def _sessions(course_uuid: str) -> list[dict]:
    rows = records.children(get_db(), course_uuid, "session")
    return sorted(rows, key=lambda r: (r["answers"]["date"], r["answers"]["start_time"]))


def _render(form, *, title, status=200, **context):
    return render_template("records/form.html", form=form, title=title, **context), status


def _check_session(form, course: dict) -> bool:
    """The domain's session rules, shown on the fields they concern."""
    answers, span = form.result.answers, course["answers"]
    problems = trainings.session_problems(
        date.fromisoformat(answers["date"]), time.fromisoformat(answers["start_time"]),
        time.fromisoformat(answers["end_time"]), date.fromisoformat(span["start_date"]),
        date.fromisoformat(span["end_date"]),
    )
    if "session_ends_before_start" in problems:
        form.end_time.errors = [message(Error("session_ends_before_start"))]
    if "session_outside_course" in problems:
        form.date.errors = [message(Error("session_outside_course", {
            "start": span["start_date"], "end": span["end_date"]}))]
    return not problems


def _roster(course_uuid: str) -> list[tuple[dict, dict]]:
    """(enrolment, person record) of everyone enrolled, in enrolment order. Two persons central
    merged into one are on it once: by the survivor's own enrolment, if they have one."""
    enrolments = [e for e in records.children(get_db(), course_uuid, "enrolment")
                  if e["answers"].get("status") == "enrolled"]
    now_is = person_store.canonical(get_db(), [e["person"] for e in enrolments])
    kept: dict[str, dict] = {}
    for e in enrolments:
        if now_is[e["person"]] not in kept or e["person"] == now_is[e["person"]]:
            kept[now_is[e["person"]]] = e
    people = person_store.describe(get_db(), [e["person"] for e in kept.values()])
    return [(e, people[e["person"]]) for e in kept.values() if e["person"] in people]


def _enrol(course: dict, person: str, extra: list | None = None,
           present_at: dict | None = None) -> str | None:
    """Enrol a person (after `extra` submissions, and marked present at the session `present_at`,
    all in one transaction); the refusal, or None."""
    roster = _roster(course["uuid"])
    now_is = person_store.canonical(get_db(), [person, *(e["person"] for e, _ in roster)])
    problems = trainings.enrolment_problems(
        already_enrolled=any(now_is[e["person"]] == now_is[person] for e, _ in roster),
        enrolled=len(roster),
        capacity=course["answers"].get("capacity"),
    )
    if "already_enrolled" in problems:
        return gettext("This person is already on the course's roster.")
    if "course_full" in problems:
        return gettext("The course is full: all %(n)s places are taken.",
                       n=course["answers"]["capacity"])
    enrolment = capture.submission(
        schema.get("enrolment"), persons.enrolment_uuid(course["uuid"], person),
        {"status": "enrolled"}, post=course["post"], parent=course["uuid"], person=person,
    )
    marks = [capture.submission(
        schema.get("attendance"), persons.mark_uuid(present_at["uuid"], person),
        {"status": "present"}, post=course["post"], parent=present_at["uuid"], person=person,
    )] if present_at else []
    records.save_batch(get_db(), [*(extra or []), enrolment, *marks], actor=audit.actor())
    return None


@bp.get("/courses")
@allow(*roles.RECORD_READERS)
def courses():
    rows = records.search(get_db(), "course", post=capture.own_post(), limit=200)
    return render_template("trainings/courses.html", rows=rows)


@bp.route("/courses/new", methods=["GET", "POST"])
@allow(*roles.TRAINING_MANAGERS)
def new_course():
    definition = schema.get("course")
    central = roles.sees_all_posts(g.user["role"])
    posts = users.posts(get_db()) if central else [g.user["post"]]
    title = gettext("New training course")
    if request.method == "GET":
        return _render(capture.blank_form(definition, min_attendance="80"), title=title, posts=posts)
    form = capture.submitted_form("course", request.form)
    post = request.form.get("post", "") if central else g.user["post"]
    if form.validate():
        if post not in posts:
            form.form_errors_extra.append(gettext("Choose the post that runs the course."))
        elif (result := capture.save(form, post=post, location=url_for(
                "trainings.course", uuid=form.uuid.data))).saved:
            return capture.saved_redirect(result)
    return _render(form, title=title, posts=posts, status=422)


@bp.get("/courses/<uuid>")
@allow(*roles.RECORD_READERS)
def course(uuid):
    record = capture.visible(uuid, "course")
    definition = schema.get("course", record["form_version"])
    return render_template(
        "trainings/course.html", course=record, sessions=_sessions(uuid), roster=_roster(uuid),
        sections=display.sections(definition, record["answers"], sensitive=False),
        session_definition=schema.get("session"),
    )


@bp.route("/courses/<uuid>/edit", methods=["GET", "POST"])
@allow(*roles.TRAINING_MANAGERS)
def edit_course(uuid):
    record = capture.visible(uuid, "course")
    definition = schema.get("course", record["form_version"])
    title = gettext("Correct course")
    back = url_for("trainings.course", uuid=uuid)
    if request.method == "GET":
        return _render(capture.record_form(definition, record), title=title, record=record,
                       cancel_url=back)
    form = capture.submitted_form("course", request.form)
    if form.uuid.data == uuid and form.validate():
        if (result := capture.save(form, post=record["post"], location=back)).saved:
            return capture.saved_redirect(result)
    elif form.uuid.data != uuid:
        form.form_errors_extra.append(str(TAMPERED))
    return _render(form, title=title, record=record, cancel_url=back, status=422)


@bp.route("/courses/<uuid>/sessions/new", methods=["GET", "POST"])
@allow(*roles.TRAINING_MANAGERS)
def new_session(uuid):
    parent = capture.visible(uuid, "course")
    definition = schema.get("session")
    title = gettext("New session")
    context = {"subtitle": parent["title"], "cancel_url": url_for("trainings.course", uuid=uuid),
               "post": parent["post"]}
    if request.method == "GET":
        blank = capture.blank_form(definition, date=parent["answers"]["start_date"], status="scheduled")
        return _render(blank, title=title, **context)
    form = capture.submitted_form("session", request.form)
    if form.validate() and _check_session(form, parent):
        result = capture.save(form, post=parent["post"], parent=uuid, location=context["cancel_url"])
        if result.saved:
            return capture.saved_redirect(result)
    return _render(form, title=title, status=422, **context)


@bp.route("/sessions/<uuid>/edit", methods=["GET", "POST"])
@allow(*roles.TRAINING_MANAGERS)
def edit_session(uuid):
    record = capture.visible(uuid, "session")
    parent = capture.visible(record["parent"], "course")
    definition = schema.get("session", record["form_version"])
    title = gettext("Correct session")
    context = {"subtitle": parent["title"], "record": record,
               "cancel_url": url_for("trainings.course", uuid=parent["uuid"])}
    if request.method == "GET":
        return _render(capture.record_form(definition, record), title=title, **context)
    form = capture.submitted_form("session", request.form)
    if form.uuid.data == uuid and form.validate() and _check_session(form, parent):
        result = capture.save(form, post=record["post"], parent=parent["uuid"],
                              location=context["cancel_url"])
        if result.saved:
            return capture.saved_redirect(result)
    elif form.uuid.data != uuid:
        form.form_errors_extra.append(str(TAMPERED))
    return _render(form, title=title, status=422, **context)


@bp.get("/courses/<uuid>/enrol")
@allow(*roles.RECORD_CAPTURERS)
def enrol(uuid):
    course = capture.visible(uuid, "course")
    query = request.args.get("q", "")[:100]
    rows = records.search(get_db(), persons.PERSON_FORMS, post=course["post"], text=query,
                          limit=30) if query.strip() else []
    roster = [e["person"] for e, _ in _roster(uuid)]
    now_is = person_store.canonical(get_db(), [*map(persons.person_id, rows), *roster])
    found, seen = [], set()
    for row in rows:  # a person once, also two that central merged into one
        if now_is[persons.person_id(row)] not in seen:
            seen.add(now_is[persons.person_id(row)])
            found.append(row)
    on_roster = {now_is[p] for p in roster}
    enrolled = {persons.person_id(r) for r in found if now_is[persons.person_id(r)] in on_roster}
    return render_template("trainings/enrol.html", course=course, query=query, found=found,
                           enrolled=enrolled, person_id=persons.person_id)


@bp.post("/courses/<uuid>/enrol")
@allow(*roles.RECORD_CAPTURERS)
def enrol_person(uuid):
    course = capture.visible(uuid, "course")
    person = request.form.get("person", "")
    back = url_for("trainings.enrol", uuid=uuid, q=request.form.get("q") or None)
    known = records.persons(get_db(), [person]) if is_uuid(person) else {}
    if person not in known or known[person]["post"] != course["post"]:
        flash(gettext("That person was not found at this post."), "error")
        return redirect(back)
    problem = _enrol(course, person)
    if problem:
        flash(problem, "error")
        return redirect(back)
    flash(gettext("%(name)s is enrolled.", name=known[person]["title"]), "success")
    return redirect(url_for("trainings.course", uuid=uuid))


def open_sessions_today(post: str | None) -> list[dict]:
    """The post's sessions today that were not cancelled: where attendance is taken today."""
    if post is None:
        return []
    return [s for s in records.sessions_on(get_db(), post, date.today().isoformat())
            if s["answers"]["status"] != "cancelled"]


def walk_in_session(course: dict, session_uuid: str) -> dict | None:
    """The open session of this course a walk-in arrives at, if any."""
    session = records.get(get_db(), session_uuid) if is_uuid(session_uuid) else None
    if (session and session["form"] == "session" and session["parent"] == course["uuid"]
            and session["answers"]["status"] != "cancelled"):
        return session
    return None


def capture_participant(course: dict, walk_in: dict | None, formdata, *,
                        csrf: bool = True) -> capture.Capture:
    """Register a participant and enrol them (and mark a walk-in present), all at once."""
    form = capture.submitted_form("participant", formdata, csrf=csrf)
    if not form.validate():
        return capture.Capture(Outcome.REJECTED, form)
    participant = capture.submission(
        form.definition, form.uuid.data, form.result.answers, post=course["post"],
        base_revision=int(form.base_revision.data),
    )
    done = (url_for("trainings.checkin", uuid=walk_in["uuid"]) if walk_in
            else url_for("trainings.course", uuid=course["uuid"]))
    if records.get(get_db(), participant.uuid):
        # Sent again (a lost answer, a second tab): the registration and its enrolment were one
        # transaction, so the record contract decides for both.
        return capture.decided(form, records.save(get_db(), participant, actor=audit.actor()), done)
    if problem := _enrol(course, participant.uuid, extra=[participant], present_at=walk_in):
        return capture.Capture(Outcome.REJECTED, form, problem)
    return capture.Capture(Outcome.STORED, form, location=done)


@bp.route("/courses/<uuid>/participants/new", methods=["GET", "POST"])
@allow(*roles.RECORD_CAPTURERS)
def new_participant(uuid):
    course = capture.visible(uuid, "course")
    walk_in = walk_in_session(course, request.args.get("session", ""))
    context = {"subtitle": course["title"], "post": course["post"], "cancel_url": (
        url_for("trainings.checkin", uuid=walk_in["uuid"]) if walk_in
        else url_for("trainings.course", uuid=uuid))}
    # Works offline: saved to the device's outbox when the server is unreachable.
    context["outbox"] = {"kind": "participant", "course": uuid,
                         "session": walk_in["uuid"] if walk_in else "",
                         "label": list(capture.LABEL_FIELDS), "done": context["cancel_url"]}
    title = gettext("New participant")
    if request.method == "GET":
        return _render(capture.blank_form(schema.get("participant")), title=title, **context)
    result = capture_participant(course, walk_in, request.form)
    if result.outcome is Outcome.STORED:
        flash(gettext("Participant registered and enrolled."), "success")
        return redirect(result.location)
    if result.saved:
        return capture.saved_redirect(result)
    return _render(result.form, title=title, status=422, **context)


MARK_MESSAGES = {
    "unknown_status": lambda: gettext("Choose present, absent, late or excused."),
    "not_on_roster": lambda: gettext("This person is not on the course's roster."),
    "session_cancelled": lambda: gettext("This session was cancelled: no attendance is taken."),
    "conflict": lambda: gettext("Someone else marked this person meanwhile; their mark is shown."),
}


def _marks(session_uuid: str) -> dict[str, dict]:
    """The attendance mark of each person at a session."""
    return {m["person"]: m for m in records.children(get_db(), session_uuid, "attendance")}


def _save_mark(session: dict, course: dict, person: str, status: str, base: int,
               note: str = "") -> tuple[str, dict | None]:
    """Save one mark: ("stored" | "duplicate", mark) or (problem code, current mark).

    Enrolments and marks have derived uuids, so each check is one lookup, whatever the roster size.
    """
    db = get_db()
    enrolment = records.get(db, persons.enrolment_uuid(course["uuid"], person))
    mark_uuid = persons.mark_uuid(session["uuid"], person)
    problems = trainings.mark_problems(
        status=status,
        on_roster=bool(enrolment) and enrolment["answers"].get("status") == "enrolled",
        cancelled=session["answers"]["status"] == "cancelled",
    )
    if problems:
        return problems[0], records.get(db, mark_uuid)
    answers = {"status": status, **({"note": note} if note else {})}
    decision = records.save(db, capture.submission(
        schema.get("attendance"), mark_uuid, answers, post=session["post"], base_revision=base,
        parent=session["uuid"], person=person,
    ), actor=audit.actor())
    mark = records.get(db, mark_uuid)
    if decision.outcome in (Outcome.STORED, Outcome.DUPLICATE):
        return decision.outcome.value, mark
    return "conflict", mark


def session_and_course(uuid: str) -> tuple[dict, dict]:
    session = capture.visible(uuid, "session")
    return session, capture.visible(session["parent"], "course")


@bp.get("/sessions/<uuid>/checkin")
@allow(*roles.RECORD_CAPTURERS)
def checkin(uuid):
    session, course = session_and_course(uuid)
    field = schema.get("attendance").fields_by_name["status"]
    roster = _roster(course["uuid"])
    return render_template(
        "trainings/checkin.html", session=session, course=course, roster=roster,
        marks=_marks(uuid), labels={s: choice_label(field, s) for s in trainings.STATUSES},
        mark_uuids={e["person"]: persons.mark_uuid(uuid, e["person"]) for e, _ in roster},
    )


def capture_mark(session: dict, course: dict, value: str) -> capture.Capture:
    """One tap, `<person>:<base revision>:<status>`, from the check-in page or a device's outbox.
    `extra` holds the person's mark as it now stands."""
    person, _, rest = value.partition(":")
    base, _, status = rest.partition(":")
    if not (is_uuid(person) and base.isdecimal() and len(base) < 10):
        outcome, current = "unknown_status", None
    else:
        outcome, current = _save_mark(session, course, person, status, int(base))
    extra = {"person": person, "status": current["answers"]["status"] if current else "",
             "revision": current["revision"] if current else 0}
    if outcome in ("stored", "duplicate"):
        return capture.Capture(Outcome(outcome), extra=extra)
    result = Outcome.CONFLICT if outcome == "conflict" else Outcome.REJECTED
    return capture.Capture(result, problem=MARK_MESSAGES[outcome](), extra={**extra, "code": outcome})


@bp.post("/sessions/<uuid>/marks")
@allow(*roles.RECORD_CAPTURERS)
def mark(uuid):
    """One tap posted without the script (which sends taps through the outbox)."""
    session, course = session_and_course(uuid)
    result = capture_mark(session, course, request.form.get("mark", ""))
    if not result.saved:
        flash(result.problem, "error")
        return redirect(url_for("trainings.checkin", uuid=uuid))
    return redirect(url_for("trainings.checkin", uuid=uuid) + f"#p-{result.extra['person']}")


@bp.post("/sessions/<uuid>/marks/all-present")
@allow(*roles.RECORD_CAPTURERS)
def mark_all_present(uuid):
    """Mark everyone not yet marked as present, in one transaction."""
    session, course = session_and_course(uuid)
    if session["answers"]["status"] == "cancelled":
        flash(MARK_MESSAGES["session_cancelled"](), "error")
        return redirect(url_for("trainings.checkin", uuid=uuid))
    marks = _marks(uuid)
    definition = schema.get("attendance")
    new = [
        capture.submission(definition, persons.mark_uuid(uuid, e["person"]),
                           {"status": "present"}, post=session["post"], parent=uuid,
                           person=e["person"])
        for e, _ in _roster(course["uuid"]) if e["person"] not in marks
    ]
    records.save_batch(get_db(), new, actor=audit.actor())
    flash(gettext("Marked present: %(n)s.", n=len(new)), "success")
    return redirect(url_for("trainings.checkin", uuid=uuid))


def _figures(course: dict):
    """The course's attendance figures and the people they are about."""
    session_rows = _sessions(course["uuid"])
    sessions = [
        trainings.Session(
            s["uuid"], date.fromisoformat(s["answers"]["date"]),
            time.fromisoformat(s["answers"]["start_time"]),
            time.fromisoformat(s["answers"]["end_time"]),
            cancelled=s["answers"]["status"] == "cancelled",
        )
        for s in session_rows
    ]
    roster = _roster(course["uuid"])
    found = records.children(get_db(), [s.uuid for s in sessions], "attendance")
    now_is = person_store.canonical(get_db(), [*(m["person"] for m in found),
                                               *(e["person"] for e, _ in roster)])
    # Marks of persons merged into one count for the one on the roster; attended wins a session.
    shown = {now_is[e["person"]]: e["person"] for e, _ in roster}
    marks: dict[str, dict[str, str]] = {}
    for m in found:
        who, at = shown.get(now_is[m["person"]], m["person"]), marks.setdefault(m["parent"], {})
        if at.get(who) not in trainings.ATTENDED:
            at[who] = m["answers"]["status"]
    people = {e["person"]: _groups(p) for e, p in roster}
    figures = trainings.course_figures(sessions, people, marks, course["answers"]["min_attendance"],
                                       today=date.today())
    return figures, {e["person"]: p for e, p in roster}, sessions


def _groups(person: dict) -> dict:
    """What the programme reports on: sex, nationality and migrant or host community."""
    answers = person["answers"]
    population = answers.get("population", "migrant" if person["form"] == "intake" else "")
    return {"sex": answers.get("sex", ""), "nationality": answers.get("nationality", ""),
            "population": population}


@bp.get("/courses/<uuid>/summary")
@allow(*roles.RECORD_READERS)
def summary(uuid):
    course = capture.visible(uuid, "course")
    figures, people, sessions = _figures(course)
    participant = schema.get("participant")
    return render_template(
        "trainings/summary.html", course=course, figures=figures, people=people,
        course_over=trainings.course_over(sessions, date.today()), today=date.today(),
        group_fields={"sex": participant.fields_by_name["sex"],
                      "nationality": participant.fields_by_name["nationality"],
                      "population": participant.fields_by_name["population"]},
        group_titles={"sex": gettext("By sex"), "nationality": gettext("By nationality"),
                      "population": gettext("Migrants and host community")},
    )


def _certificate_key() -> bytes:
    secret = current_app.secret_key.encode()
    return hmac.new(secret, b"fieldapp certificate numbers", hashlib.sha256).digest()


@bp.post("/courses/<uuid>/certificates")
@allow(*roles.TRAINING_MANAGERS)
def issue_certificates(uuid):
    """Issue the certificates of everyone who qualifies, in one transaction, once the course is
    over. Issuing again brings the hours of corrected attendance up to date (a new revision)."""
    course = capture.visible(uuid, "course")
    figures, _, sessions = _figures(course)
    if not trainings.course_over(sessions, date.today()):
        flash(gettext("Certificates can be issued once the last session has taken place."),
              "error")
        return redirect(url_for("trainings.summary", uuid=uuid))
    definition, key = schema.get("certificate"), _certificate_key()
    existing = {c["person"]: c for c in records.children(get_db(), uuid, "certificate")}
    issued = []
    for f in figures.participants:
        if not f.qualifies:
            continue
        before = existing.get(f.person)
        minutes = int(f.attendance.hours * 60)
        if before and before["answers"]["minutes"] == minutes:
            continue
        issued.append(capture.submission(
            definition, persons.certificate_uuid(uuid, f.person),
            {"number": trainings.certificate_number(key, uuid, f.person), "minutes": minutes,
             "issued_on": before["answers"]["issued_on"] if before else date.today().isoformat()},
            post=course["post"], base_revision=before["revision"] if before else 0, parent=uuid,
            person=f.person,
        ))
    records.save_batch(get_db(), issued, actor=audit.actor())
    return redirect(url_for("trainings.certificates", uuid=uuid,
                            paper=request.form.get("paper", "a4")))


@bp.get("/courses/<uuid>/certificates")
@allow(*roles.RECORD_READERS)
def certificates(uuid):
    course = capture.visible(uuid, "course")
    issued = records.children(get_db(), uuid, "certificate")
    people = person_store.describe(get_db(), [c["person"] for c in issued])
    paper = "letter" if request.args.get("paper") == "letter" else "a4"
    sessions = [s for s in _sessions(uuid) if s["answers"]["status"] != "cancelled"]
    return render_template("trainings/certificates.html", course=course, paper=paper,
                           certificates=[(c, people[c["person"]]) for c in issued
                                         if c["person"] in people],
                           first=sessions[0]["answers"]["date"] if sessions else None,
                           last=sessions[-1]["answers"]["date"] if sessions else None)


@bp.get("/certificates/verify")
@allow(*roles.ROLES)
def verify_certificate():
    number = request.args.get("number", "")[:40].strip()
    found = course = person = None
    if number and trainings.checksum_ok(number):
        found = records.by_document(get_db(), "certificate", number)
        if found and roles.may_see_post(g.user["role"], g.user["post"], found["post"]):
            course = records.get(get_db(), found["parent"])
            person = person_store.describe(get_db(), [found["person"]]).get(found["person"])
        else:
            found = None
    return render_template("trainings/verify.html", number=number, found=found, course=course,
                           person=person, well_formed=not number or trainings.checksum_ok(number))


@bp.route("/sessions/<uuid>/attendance/<person>", methods=["GET", "POST"])
@allow(*roles.RECORD_CAPTURERS)
def attendance_form(uuid, person):
    """The classic form, one per participant per session, for posts that record on paper first.
    It writes the same mark record as the check-in page."""
    session, course = session_and_course(uuid)
    people = dict((e["person"], p) for e, p in _roster(course["uuid"]))
    if person not in people:
        abort(404)
    definition = schema.get("attendance")
    current = _marks(uuid).get(person)
    back = url_for("trainings.checkin", uuid=uuid)
    context = {"subtitle": f"{people[person]['title']} · {course['title']} · "
                           f"{session['answers']['date']}", "post": session["post"],
               "cancel_url": back}
    title = gettext("Training attendance")
    if request.method == "GET":
        form = capture.record_form(definition, current) if current else capture.blank_form(definition)
        form.uuid.data = persons.mark_uuid(uuid, person)
        return _render(form, title=title, **context)
    form = form_class(definition)(today=date.today())
    if form.uuid.data != persons.mark_uuid(uuid, person):
        form.form_errors_extra.append(str(TAMPERED))
    elif form.validate():
        outcome, _ = _save_mark(session, course, person, form.result.answers["status"],
                                int(form.base_revision.data), form.result.answers.get("note", ""))
        if outcome in ("stored", "duplicate"):
            flash(gettext("Record saved."), "success")
            return redirect(back)
        form.form_errors_extra.append(MARK_MESSAGES[outcome]())
    return _render(form, title=title, status=422, **context)
