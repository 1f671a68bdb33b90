"""Turn a form definition into a Flask-WTF form, with choices labelled in the reader's language."""

from __future__ import annotations

import re
from datetime import date
from functools import cache

from babel import Locale
from flask_babel import get_locale, gettext, lazy_gettext
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField

from fieldapp.domain.records import is_uuid
from fieldapp.forms import countries, html
from fieldapp.forms.base import Form
from fieldapp.forms.messages import message
from fieldapp.forms.schema import Field, FormDefinition
from fieldapp.forms.validate import Result, validate

EXTRA_COUNTRY_LABELS = {"XX": lazy_gettext("Stateless")}
TAMPERED = lazy_gettext("The form was altered and cannot be saved. Open a new form and try again.")

_REVISION = re.compile(r"[0-9]{1,9}")
_FIELD_CLASSES = {
    "text": StringField, "phone": StringField, "date": StringField, "time": StringField,
    "integer": StringField,
    "textarea": TextAreaField, "choice": SelectField, "country": SelectField,
    "multichoice": SelectMultipleField,
}


def choice_label(f: Field, code: str) -> str:
    """The label of one answer code in the request's language."""
    locale = str(get_locale())
    if f.type == "country":
        if code in EXTRA_COUNTRY_LABELS:
            return str(EXTRA_COUNTRY_LABELS[code])
        return countries.name(code, locale)
    for choice in f.choices:
        if choice.code == code:
            if choice.label:
                return gettext(choice.label)
            return Locale.parse(locale).languages.get(code, code)
    return code


def choices(f: Field) -> list[tuple[str, str]]:
    """(code, label) pairs for a choice, multichoice or country field, in display order."""
    if f.type == "country":
        locale = str(get_locale())
        extra = [(c, str(EXTRA_COUNTRY_LABELS[c])) for c in f.extra]
        return extra + list(countries.names(locale))
    return [(c.code, choice_label(f, c.code)) for c in f.choices]


class DefinitionForm(Form):
    """A Flask-WTF form built from a definition; `validate` runs the one shared validator."""

    definition: FormDefinition
    uuid = HiddenField()
    base_revision = HiddenField()
    form_version = HiddenField()
    person = HiddenField()  # the participant this record is about, when it is not its own person

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.result: Result | None = None
        self.form_errors_extra: list[str] = []

    def raw_answers(self) -> dict:
        return {f.name: self[f.name].data for f in self.definition.answer_fields}

    def tampered(self) -> bool:
        """Hidden fields a browser never changes: uuid, base revision, form version."""
        return not (
            is_uuid(self.uuid.data)
            and _REVISION.fullmatch(self.base_revision.data or "")
            and self.form_version.data == str(self.definition.version)
        )

    def validate(self, extra_validators=None) -> bool:
        csrf_ok = super().validate(extra_validators)
        self.result = validate(self.definition, self.raw_answers(), self.today)
        for name, error in self.result.errors.items():
            if name in self.definition.fields_by_name:
                self[name].errors = [message(error)]
            else:
                self.form_errors_extra.append(message(error))
        if self.tampered():
            self.form_errors_extra.append(str(TAMPERED))
        return csrf_ok and self.result.ok and not self.form_errors_extra

    def field_attrs(self, f: Field) -> dict:
        section = self.definition.section_of(f.name)
        conditional = f.relevant is not None or section.relevant is not None
        return html.attributes(f, self.today, conditional)

    def sections(self):
        return self.definition.sections

    def first_input_id(self, name: str) -> str:
        """The id the error summary links to: the input itself, or a group's first option."""
        f = self.definition.fields_by_name[name]
        grouped = f.type == "multichoice" or (f.type == "choice" and f.widget == "radio")
        return f"f-{name}-1" if grouped else f"f-{name}"

    def all_errors(self) -> list[tuple[str, str]]:
        """(field id, message) for the error summary at the top of the page, in form order."""
        found = [("", m) for m in self.form_errors_extra]
        found += [
            (f.name, f"{gettext(f.label)}: {self[f.name].errors[0]}")
            for f in self.definition.answer_fields if self[f.name].errors
        ]
        return found


@cache
def form_class(definition: FormDefinition) -> type[DefinitionForm]:
    """One DefinitionForm subclass per definition: `form_class(intake)(formdata, today=...)`."""
    attrs = {"definition": definition}
    for f in definition.answer_fields:
        cls = _FIELD_CLASSES[f.type]
        kwargs = {"validate_choice": False} if cls in (SelectField, SelectMultipleField) else {}
        attrs[f.name] = cls(f.label, **kwargs)
    return type(f"{definition.form.title()}Form", (DefinitionForm,), attrs)


def answers_as_formdata(answers: dict) -> dict:
    """Stored answers (ints, lists) as the strings a form field holds."""
    return {k: v if isinstance(v, list) else str(v) for k, v in answers.items()}
