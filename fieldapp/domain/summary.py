"""What central's summary counts an intake by: a pure rule over its answers (no SQL; storage/
summary.py keeps one row of these facts per live intake and counts them)."""

from __future__ import annotations

from fieldapp.domain.privacy import AGE_GROUP_BOUNDS, OLDEST

# (month, nationality, migratory status, age group, sex); '' where it is not recorded.
Facts = tuple[str, str, str, str, str]


def intake_facts(answers: dict, created_at: str) -> Facts:
    """`intake_facts({"interview_date": "2025-03-14", "sex": "female"}, "2025-03-20T10:00:00Z")
    == ("2025-03", "", "", "", "female")`.

    The month is the interview's, else the capture's (`created_at`). The age group is the
    age_group answer (asked when consent was refused), else the group of the age at that day:
    whole years from the birth date, else the estimated age. These are migration 0006's SQL
    expressions, which fill the table when a database is upgraded (a test keeps them equal)."""
    day = answers.get("interview_date")
    if day is None:
        day = created_at[:10]
    group = answers.get("age_group")
    if group is None:
        group = _age_group(str(day), answers)
    return (str(day)[:7], _text(answers.get("nationality")), _text(answers.get("migratory_status")),
            _text(group), _text(answers.get("sex")))


def _text(value) -> str:
    return "" if value is None else str(value)


def _age_group(day: str, answers: dict) -> str:
    born, estimated = answers.get("birth_date"), answers.get("estimated_age")
    try:
        if born is not None:
            age = (int(day.replace("-", "")) - int(str(born).replace("-", ""))) // 10000
        elif estimated is not None:
            age = int(estimated)
        else:
            return ""
    except (TypeError, ValueError):
        return ""
    return next((code for top, code in AGE_GROUP_BOUNDS if age <= top), OLDEST)
