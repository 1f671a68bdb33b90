"""HTML5 attributes derived from a field's rules, so the browser checks what the server checks."""

from __future__ import annotations

import json
from datetime import date

from fieldapp.forms.schema import Field
from fieldapp.forms.validate import DEFAULT_MAX_LENGTH

# The phone rule in browser terms: + then digits and separators (the server removes separators).
PHONE_PATTERN = r"\s*\+[1-9][0-9\s\(\)\.\-]{7,28}"
INTEGER_PATTERN = r"\s*-?[0-9]{1,6}\s*"


def attributes(f: Field, today: date, conditional: bool = False) -> dict:
    """Attributes for the input of `f`; conditional rules become data-* for static/js/form.js.

    `conditional` says whether the field's section or the field itself has a relevance condition:
    such a field is only `required` while shown, which static/js/form.js manages.
    """
    attrs: dict = {}
    if f.required and not conditional:
        attrs["required"] = True
    elif f.required:
        attrs["data-required"] = "1"
    if f.required_if:
        attrs["data-required-if"] = relevance(f.required_if)
    if f.type in ("text", "textarea", "phone"):
        attrs["maxlength"] = f.max_length or DEFAULT_MAX_LENGTH[f.type]
    if f.type == "text" and f.pattern:
        attrs["pattern"] = f.pattern
    if f.type == "phone":
        attrs.update(type="tel", pattern=PHONE_PATTERN, autocomplete="off")
    if f.type == "integer":
        # Text with a digits pattern, not type=number: that accepts "3e1", which the server refuses.
        attrs.update(inputmode="numeric", pattern=INTEGER_PATTERN, maxlength=9)
    if f.type == "time":
        attrs["type"] = "time"
    if f.type == "date":
        attrs["type"] = "date"
        if f.min:
            attrs["min"] = f.min
        if f.not_future:
            attrs["max"] = today.isoformat()
    return attrs


def relevance(condition) -> str:
    """A condition as JSON for the data-relevant attribute."""
    return json.dumps(condition.as_json()) if condition else ""
