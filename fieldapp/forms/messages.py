"""Translated messages for the validator's language-neutral error codes."""

from __future__ import annotations

from datetime import date

from flask_babel import format_date, format_decimal, gettext, lazy_gettext

from fieldapp.forms.validate import Error

_MESSAGES = {
    "required": lazy_gettext("This answer is required."),
    "control_characters": lazy_gettext(
        "This answer contains invisible control characters. Please type it again."
    ),
    "too_long": lazy_gettext("This answer is too long: at most %(max)s characters."),
    "invalid_format": lazy_gettext("This answer is not in the expected format."),
    "invalid_phone": lazy_gettext(
        "Enter the phone number in international format, starting with + and the country code."
    ),
    "not_integer": lazy_gettext("Enter a whole number."),
    "too_small": lazy_gettext("Enter a number of at least %(min)s."),
    "too_large": lazy_gettext("Enter a number of at most %(max)s."),
    "invalid_date": lazy_gettext("Enter a valid date."),
    "invalid_time": lazy_gettext("Enter a time as hours and minutes, for example 14:30."),
    "date_too_early": lazy_gettext("The date cannot be before %(min)s."),
    "date_in_future": lazy_gettext("The date cannot be in the future."),
    "date_before_other": lazy_gettext("The date cannot be before “%(other)s”."),
    "date_after_other": lazy_gettext("The date cannot be after “%(other)s”."),
    "unknown_choice": lazy_gettext("Choose one of the options offered."),
    "exclusive_choice": lazy_gettext("This option cannot be combined with the others."),
    "unknown_country": lazy_gettext("Choose a country from the list."),
    "not_text": lazy_gettext("Answers must be typed in the form, not sent as files."),
    "session_ends_before_start": lazy_gettext("The session must end after it starts."),
    "session_outside_course": lazy_gettext(
        "The date must be within the course, from %(start)s to %(end)s."),
}


def message(error: Error) -> str:
    """The error in the request's language: `message(Error("required"))`."""
    params = dict(error.params)
    if "other" in params:
        label = params["other"]  # a field label: an English msgid from the form definition
        params["other"] = gettext(label)
    if error.code == "date_too_early":
        params["min"] = format_date(date.fromisoformat(params["min"]), "long")
    elif error.code == "session_outside_course":
        params = {k: format_date(date.fromisoformat(v), "long") for k, v in params.items()}
    else:
        params.update({k: format_decimal(v) for k, v in params.items() if isinstance(v, int)})
    return str(_MESSAGES[error.code]) % params if params else str(_MESSAGES[error.code])
