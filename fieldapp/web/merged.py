"""Central: the merged records of every post, filtered and searched, each with its provenance."""

from __future__ import annotations

from functools import cache

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext

from fieldapp import exports
from fieldapp.domain import filters, roles
from fieldapp.forms import schema
from fieldapp.forms.builder import choices
from fieldapp.storage import central
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db

bp = Blueprint("merged", __name__, url_prefix="/<lang>/central")

@cache
def form_titles() -> dict[str, str]:
    """Form names as people read them (the definitions' titles are the msgids)."""
    return {form: schema.get(form).title for form in filters.FORMS}


only_in(bp, "central")


def parse_filter(args) -> tuple[filters.Filter, dict[str, str]]:
    """The filter in a request's arguments and its errors, translated."""
    flt, errors = exports.parse_filter(args)
    return flt, {name: gettext(message) for name, message in errors.items()}


def filter_context(flt: filters.Filter, errors: dict) -> dict:
    """What the filter form shows: the choices of every list, the current values and errors."""
    intake = schema.get("intake")
    return {
        "flt": flt, "errors": errors, "values": request.args, "form_titles": form_titles(),
        "posts": central.posts(get_db()), "courses": central.courses(get_db()),
        "countries": choices(intake.fields_by_name["nationality"]),
        "choice_fields": [intake.fields_by_name[n] for n in ("sex", "age_group", "migratory_status")],
    }


@bp.get("/records")
@allow(*roles.CENTRAL_ANALYSTS)
def records():
    flt, errors = parse_filter(request.args)
    if errors:
        return render_template("central/records.html", rows=[], total=None,
                               **filter_context(flt, errors)), 400
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before < 2**63:
        before = None
    size = current_app.config["PAGE_SIZE"]
    rows = central.page(get_db(), flt, before=before, limit=size + 1)
    return render_template(
        "central/records.html", rows=rows[:size], total=central.count(get_db(), flt),
        next_before=rows[size - 1]["id"] if len(rows) > size else None,
        next_args={**flt.as_dict(), "before": rows[size - 1]["id"]} if len(rows) > size else None,
        user=g.user, **filter_context(flt, errors))
