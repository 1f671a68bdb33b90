"""Saving a validated definition form under the record contract, shared by every capture view."""

from __future__ import annotations

from flask import current_app, flash, g
from flask_babel import gettext

from fieldapp.domain.records import Outcome
from fieldapp.forms.builder import TAMPERED
from fieldapp.forms.schema import FormDefinition
from fieldapp.storage import records
from fieldapp.web.db import get_db


def save(form, definition: FormDefinition, *, post: str, parent: str = "",
         person: str = "") -> str | None:
    """Store the form's answers; flash what happened and return None, or return the message to
    show above the form when nothing could be stored (the officer's input stays on screen)."""
    submission = records.Submission(
        uuid=form.uuid.data, definition=definition, answers=form.result.answers, post=post,
        device=current_app.config["DEVICE_ID"], user=g.user["username"],
        base_revision=int(form.base_revision.data), parent=parent, person=person,
    )
    decision = records.save(get_db(), submission)
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
