"""Central's summary page: what the live records of every post add up to, as tables and SVG charts.

Figures come from storage/summary.py; this module only turns codes into the reader's labels,
formats numbers and dates with Babel, and asks domain/charts.py to draw them."""

from __future__ import annotations

import re
from datetime import date

from babel import numbers
from babel.dates import format_skeleton
from flask import Blueprint, render_template, request
from flask_babel import format_decimal, format_percent, get_locale, gettext
from markupsafe import Markup  # charts escape every text they draw

from fieldapp.domain import charts, roles
from fieldapp.forms import schema
from fieldapp.forms.builder import choice_label
from fieldapp.storage import summary
from fieldapp.web.access import allow, only_in
from fieldapp.web.db import get_db

bp = Blueprint("summary", __name__, url_prefix="/<lang>/central/summary")

MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
NATIONALITY_BARS = 12  # the chart's bars: the most frequent, then one for the rest
ATTENDANCE_BARS = 20  # the most recent courses with a session held
MAX_MONTHS = 120  # a longer span lists only the months that have intakes


only_in(bp, "central")


def _filters(posts: list[str]) -> tuple[summary.Filters, list[str]]:
    """The filters of the query string, and what is wrong with them."""
    post = request.args.get("post", "").strip()
    first = request.args.get("from", "").strip()
    last = request.args.get("to", "").strip()
    errors = []
    if post and post not in posts:
        errors.append(gettext("There are no records of post %(post)s.", post=post[:30]))
    if any(m and not MONTH.fullmatch(m) for m in (first, last)):
        errors.append(gettext("Give each month as year and month, for example 2025-03."))
    elif first and last and first > last:
        errors.append(gettext("The first month comes after the last month."))
    return summary.Filters(post or None, first or None, last or None), errors


def _month_label(month: str) -> str:
    year, number = month.split("-")
    return format_skeleton("yMMM", date(int(year), int(number), 1), locale=get_locale())


def _months(present: set[str]) -> list[str]:
    """Every month from the first to the last with intakes (only these if the span is long)."""
    if not present:
        return []
    first, last = min(present), max(present)
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1
    if span > MAX_MONTHS:
        return sorted(present)
    year, month = int(first[:4]), int(first[5:])
    months = []
    for _ in range(span):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _label(field, code: str) -> str:
    return choice_label(field, code) if code else gettext("Not recorded")


def _ordered(field, counts) -> list[str]:
    """The codes counted, in the form's order, then any unknown ones, then "not recorded"."""
    known = [c.code for c in field.choices]
    return ([c for c in known if c in counts] + sorted(c for c in counts if c and c not in known)
            + ([""] if "" in counts else []))


def _number_formatter():
    """format_decimal, remembering each value: a page formats the same small counts many times,
    and Babel takes about 0.1 ms a call."""
    known: dict = {}

    def number(n) -> str:
        if n not in known:
            known[n] = format_decimal(n)
        return known[n]

    return number


def _share(n: int, total: int) -> str:
    """n of total as a percentage with at most one decimal, in the locale's pattern."""
    if not total:
        return "–"
    return numbers.format_percent(round(n / total, 3), locale=get_locale(),
                                  decimal_quantization=False)


def _registrations(counts, months: list[str], posts: list[str], number) -> dict:
    pairs = counts.pair("month", "post")
    rows = [(_month_label(m), [pairs[m, p] for p in posts], sum(pairs[m, p] for p in posts))
            for m in months]
    chart = charts.stacked_columns(
        "chart-registrations", gettext("Intakes per month by post"), [r[0] for r in rows],
        [charts.Series(p, [r[1][i] for r in rows], [number(r[1][i]) for r in rows])
         for i, p in enumerate(posts)],
        number,
        desc=gettext("Intakes per month, each column stacked by post. The table below gives "
                     "the same figures."),
    )
    return {"rows": rows, "chart": Markup(chart)}


def _nationalities(counts, field, number) -> dict:
    alone, total = counts.by("nationality"), counts.total
    order = sorted(alone, key=lambda c: (c == "", -alone[c], _label(field, c)))
    rows = [(_label(field, c), alone[c], _share(alone[c], total)) for c in order]
    bars = [charts.Bar(label, n, number(n)) for label, n, _ in rows[:NATIONALITY_BARS]]
    if rest := sum(n for _, n, _ in rows[NATIONALITY_BARS:]):
        bars.append(charts.Bar(gettext("Other nationalities"), rest, number(rest)))
    chart = charts.horizontal_bars(
        "chart-nationalities", gettext("Intakes by nationality"), bars,
        desc=gettext("Intakes by nationality, the most frequent first. The table below gives "
                     "every nationality."))
    return {"rows": rows, "chart": Markup(chart) if bars else None}


def _attendance_chart(courses: list[summary.CourseFigures]) -> tuple[Markup, int] | None:
    """The chart and how many courses it shows."""
    held = [c for c in courses if c.attendance_rate is not None][-ATTENDANCE_BARS:]
    if not held:
        return None
    bars = [charts.Bar(f"{c.post} · {c.title}", float(c.attendance_rate),
                       format_percent(float(c.attendance_rate))) for c in held]
    return Markup(charts.percentage_bars(
        "chart-attendance", gettext("Attendance per course"), bars,
        lambda share: format_percent(share),
        desc=gettext("Share of the sessions held that the enrolled participants attended, for "
                     "the %(n)s most recent courses with a session held.", n=len(bars)))), len(bars)


@bp.get("/")
@allow(*roles.CENTRAL_ANALYSTS)
def index():
    db = get_db()
    posts = summary.posts(db)
    filters, errors = _filters(posts)
    context = {"posts": posts, "filters": filters, "errors": errors}
    if errors:
        return render_template("central/summary.html", **context), 400
    found = summary.collect(db, date.today(), filters)
    number = _number_formatter()
    intake = schema.get("intake")
    fields = {name: intake.fields_by_name[name]
              for name in ("nationality", "sex", "age_group", "migratory_status")}
    counts = found.intakes
    intake_posts = sorted(counts.by("post"))
    by_status = counts.by("migratory_status")
    age_sex = counts.pair("age_group", "sex")
    sexes = _ordered(fields["sex"], counts.by("sex"))
    return render_template(
        "central/summary.html", **context, counts=counts, total=counts.total,
        participants=found.participants, training=found.training, courses=found.courses,
        registrations=_registrations(counts, _months(set(counts.by("month"))), intake_posts, number),
        intake_posts=intake_posts,
        post_rows=sorted(set(counts.by("post")) | set(found.participants)),
        nationalities=_nationalities(counts, fields["nationality"], number),
        statuses=[(_label(fields["migratory_status"], c), by_status[c],
                   _share(by_status[c], counts.total))
                  for c in _ordered(fields["migratory_status"], by_status)],
        sexes=[(c, _label(fields["sex"], c)) for c in sexes],
        age_rows=[(_label(fields["age_group"], a), [age_sex[a, s] for s in sexes],
                   sum(age_sex[a, s] for s in sexes))
                  for a in _ordered(fields["age_group"], counts.by("age_group"))],
        sex_totals=[counts.by("sex")[s] for s in sexes],
        attendance_chart=_attendance_chart(found.courses),
        share=_share, number=number,
    )
