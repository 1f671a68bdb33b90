"""What every capture view shares: finding a visible record, building its form, and saving under
the record contract."""

from __future__ import annotations

from datetime import date

from flask import abort, current_app, flash, g
from flask_babel import gettext

from fieldapp.domain import roles
from fieldapp.domain.records import Outcome, is_uuid, new_uuid
from fieldapp.forms.builder import TAMPERED, answers_as_formdata, form_class
from fieldapp.forms.schema import FormDefinition
from fieldapp.storage import records
from fieldapp.web.db import get_db


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


def submission(definition: FormDefinition, uuid: str, answers: dict, *, post: str,
               base_revision: int = 0, parent: str = "", person: str = "") -> records.Submission:
    """A revision from this device, by the logged-in user."""
    return records.Submission(
        uuid=uuid, definition=definition, answers=answers, post=post,
        device=current_app.config["DEVICE_ID"], user=g.user["username"],
        base_revision=base_revision, parent=parent, person=person,
    )


def save(form, definition: FormDefinition, *, post: str, parent: str = "",
         person: str = "") -> str | None:
    """Store the form's answers; flash what happened and return None, or return the message to
    show above the form when nothing could be stored (the officer's input stays on screen)."""
    decision = records.save(get_db(), submission(
        definition, form.uuid.data, form.result.answers, post=post,
        base_revision=int(form.base_revision.data), parent=parent, person=person,
    ))
    if decision.outcome is Outcome.STORED:
        flash(gettext("Record saved."), "success")
        return None
    if decision.outcome is Outcome.DUPLICATE:
        flash(gettext("This record was already saved; nothing was changed."), "info")
        return None
    if decision.outcome is Outcome.CONFLICT:
        return gettext(
            "Someone else changed this record since you opened it. Your answers are still below: "
            "open the record in a new tab, compare, and save again from there."
        )
    return str(TAMPERED)
