"""What every capture view shares: finding a visible record, building its form, and saving under
the record contract. The HTML views and the outbox replay (web/api.py) both save through here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask import abort, current_app, flash, g, redirect
from flask_babel import lazy_gettext

from fieldapp.domain import roles
from fieldapp.domain.records import Decision, Outcome, is_uuid, new_uuid
from fieldapp.forms import schema
from fieldapp.forms.builder import TAMPERED, DefinitionForm, answers_as_formdata, form_class
from fieldapp.forms.schema import FormDefinition
from fieldapp.storage import records
from fieldapp.web import audit
from fieldapp.web.db import get_db

SAVED = {
    Outcome.STORED: lazy_gettext("Record saved."),
    Outcome.DUPLICATE: lazy_gettext("This record was already saved; nothing was changed."),
}
CONFLICT = lazy_gettext(
    "Someone else changed this record since you opened it. Your answers are still below: "
    "open the record in a new tab, compare, and save again from there."
)
# Refusals of the storage layer a person can act on, by code.
REFUSALS = {
    "no_consent": lazy_gettext(
        "Consent was not given: this record may hold only the anonymous minimum. Remove the "
        "person's name and other personal data, or record the consent, and save again."),
    "purged": lazy_gettext(
        "The personal data of this record was removed after its retention period: it can no "
        "longer be corrected."),
}

# What names a queued record in the device's outbox: a name, never a document or a need.
LABEL_FIELDS = ("given_names", "first_surname")


@dataclass
class Capture:
    """What a submitted form came to: an outcome of the record contract, and what to show."""

    outcome: Outcome
    form: DefinitionForm | None = None
    problem: str = ""  # why nothing was stored, when no single field is to blame
    location: str = ""  # where the officer goes once it is saved
    extra: dict = field(default_factory=dict)  # what a script needs to show the saved state

    def __post_init__(self):
        if self.problem and self.form is not None:
            self.form.form_errors_extra.append(str(self.problem))

    @property
    def saved(self) -> bool:
        return self.outcome in (Outcome.STORED, Outcome.DUPLICATE)

    @property
    def notice(self) -> str:
        return str(SAVED[self.outcome])


def own_post() -> str | None:
    """The post whose records the user may see; None means every post."""
    return None if roles.sees_all_posts(g.user["role"]) else g.user["post"]


def visible(uuid: str, form: str | None = None) -> dict:
    """The record (of `form`, if given) if this user may see it; 404 otherwise, so other posts'
    uuids reveal nothing."""
    record = records.get(get_db(), uuid) if is_uuid(uuid) else None
    if record is None or record["deleted"] or (form and record["form"] != form):
        abort(404)
    if not roles.may_see_post(g.user["role"], g.user["post"], record["post"]):
        abort(404)
    return record


def blank_form(definition: FormDefinition, **answers):
    """A new form with a fresh uuid, optionally prefilled."""
    return form_class(definition)(formdata=None, today=date.today(), data={
        "uuid": new_uuid(), "base_revision": "0", "form_version": str(definition.version),
        **answers_as_formdata(answers),
    })


def record_form(definition: FormDefinition, record: dict):
    """The form to correct `record`: its answers, its uuid, its revision as the base."""
    data = answers_as_formdata(record["answers"])
    data.update(uuid=record["uuid"], base_revision=str(record["revision"]),
                form_version=str(definition.version))
    return form_class(definition)(formdata=None, data=data, today=date.today())


def submitted_form(name: str, formdata, *, csrf: bool = True) -> DefinitionForm:
    """The posted form of definition `name`, in the version it was opened with (a form opened
    before a new version shipped is saved with its own). `csrf=False` when the request as a whole
    was checked, as the outbox replay is."""
    posted = formdata.get("form_version", "")
    definition = schema.get(name, int(posted)) if posted.isdecimal() and len(posted) < 5 else None
    definition = definition or schema.get(name)
    meta = {} if csrf else {"csrf": False}  # else the app's setting decides
    return form_class(definition)(formdata=formdata, today=date.today(), meta=meta)


def submission(definition: FormDefinition, uuid: str, answers: dict, *, post: str,
               base_revision: int = 0, parent: str = "", person: str = "") -> records.Submission:
    """A revision from this device, by the logged-in user."""
    return records.Submission(
        uuid=uuid, definition=definition, answers=answers, post=post,
        device=current_app.config["DEVICE_ID"], user=g.user["username"],
        base_revision=base_revision, parent=parent, person=person,
    )


def save(form: DefinitionForm, *, post: str, location: str, parent: str = "",
         person: str = "") -> Capture:
    """Store a validated form's answers as a revision of its record."""
    return decided(form, records.save(get_db(), submission(
        form.definition, form.uuid.data, form.result.answers, post=post,
        base_revision=int(form.base_revision.data), parent=parent, person=person,
    ), actor=audit.actor()), location)


def decided(form: DefinitionForm, decision: Decision, location: str) -> Capture:
    """The storage layer's decision, with what to tell the officer."""
    if decision.outcome is Outcome.CONFLICT:
        return Capture(Outcome.CONFLICT, form, CONFLICT)
    if decision.outcome is Outcome.REJECTED and decision.code in REFUSALS:
        return Capture(Outcome.REJECTED, form, str(REFUSALS[decision.code]),
                       extra={"code": decision.code})
    if decision.outcome is Outcome.REJECTED:  # a uuid of another form or post: never from a browser
        return Capture(Outcome.REJECTED, form, str(TAMPERED))
    return Capture(decision.outcome, form, location=location)


def saved_redirect(result: Capture):
    """After a save: say what happened and go on to the record's page."""
    flash(result.notice, "success" if result.outcome is Outcome.STORED else "info")
    return redirect(result.location)
