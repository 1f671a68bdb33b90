"""Consent, purpose and retention of personal records: pure rules over a form's `[privacy]` table
(fieldapp/forms/definitions). No Flask, no SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The highest age of each group of the intake form's age_group list; older is 60_plus. The same
# bounds as the central summary's index (storage.migrations.AGE_GROUP_BOUNDS; a test keeps them
# equal), so an anonymised intake is counted in the group it was counted in before.
AGE_GROUP_BOUNDS = ((4, "0_4"), (11, "5_11"), (17, "12_17"), (24, "18_24"), (59, "25_59"))
OLDEST = "60_plus"


def is_personal(definition) -> bool:
    """Whether records of this form hold personal data: `is_personal(schema.get("intake"))`."""
    return definition.privacy is not None


def consented(definition, answers: dict) -> bool:
    """Whether the record may hold personal data: consent given, or a form that asks none."""
    privacy = definition.privacy
    return privacy is None or privacy.consent is None or privacy.consent.holds(answers)


def beyond_consent(definition, answers: dict) -> list[str]:
    """The answered questions a record without consent may not hold (empty: nothing wrong).

    `beyond_consent(intake, {"consent": "refused", "given_names": "Ana"}) == ["given_names"]`"""
    if consented(definition, answers):
        return []
    allowed = set(definition.privacy.minimum)
    return sorted(k for k, v in answers.items() if k not in allowed and v not in ("", [], None))


def purpose(definition, answers: dict) -> str:
    """The purpose a record was collected for ('' for a form without personal data)."""
    privacy = definition.privacy
    if privacy is None:
        return ""
    return privacy.purpose or str(answers.get(privacy.purpose_field) or "")


def age_group(answers: dict) -> str:
    """The age group at the interview, from the birth date or the estimated age ('' if unknown).

    `age_group({"interview_date": "2025-03-15", "birth_date": "1990-05-04"}) == "25_59"`"""
    day, born = answers.get("interview_date", ""), answers.get("birth_date", "")
    try:
        if day and born:
            age = (int(day.replace("-", "")) - int(born.replace("-", ""))) // 10000
        else:
            age = int(answers["estimated_age"])
    except (KeyError, TypeError, ValueError):
        return ""
    return next((code for top, code in AGE_GROUP_BOUNDS if age <= top), OLDEST)


def anonymised(definition, answers: dict) -> dict:
    """What a record keeps once its retention ends: the form's `keep` answers, and its age group
    where the form counts one (computed before the birth date goes)."""
    keep = definition.privacy.keep if definition.privacy else tuple(answers)
    kept = {k: answers[k] for k in keep if k in answers}
    if "age_group" in keep and "age_group" not in kept and (group := age_group(answers)):
        kept["age_group"] = group
    return kept


def iso(moment: datetime) -> str:
    """A time as the records store it: `iso(datetime(2026, 1, 2, tzinfo=UTC))`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cutoff(moment: datetime, days: float) -> str:
    """The stored time before which a record kept `days` is due at `moment`."""
    try:
        return iso(moment - timedelta(days=days))
    except OverflowError:  # kept for ever, or due at once
        return "" if days > 0 else "9999-12-31T23:59:59Z"
