"""The schema model: a form definition file loaded into checked, immutable objects."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

DEFINITIONS = Path(__file__).parent / "definitions"

FIELD_TYPES = {
    "text", "textarea", "integer", "date", "time", "choice", "multichoice", "country", "phone", "note",
}
_FILE_NAME = re.compile(r"^(?P<form>[a-z][a-z0-9_]*)-(?P<version>[0-9]+)\.toml$")


class DefinitionError(ValueError):
    """A form definition file is inconsistent (a programming error, caught by the tests)."""


@dataclass(frozen=True)
class Condition:
    """`field` has (or has not) one of `values`; a multichoice field matches if any value does."""

    field: str
    values: tuple[str, ...]
    negate: bool = False

    def holds(self, answers: dict) -> bool:
        value = answers.get(self.field)
        # Nothing chosen is the empty code "", for a multichoice as for a choice (as in form.js).
        if isinstance(value, list):
            found = any(v in self.values for v in value) if value else "" in self.values
        else:
            found = (value or "") in self.values
        return not found if self.negate else found

    def as_json(self) -> dict:
        return {"field": self.field, "values": list(self.values), "negate": self.negate}


@dataclass(frozen=True)
class Choice:
    code: str
    label: str  # English source string; empty means "name from Babel's locale data"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str
    section: str
    hint: str = ""
    required: bool = False
    required_if: Condition | None = None
    relevant: Condition | None = None
    choices: tuple[Choice, ...] = ()
    list_name: str = ""
    widget: str = "select"
    exclusive: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # extra country codes, e.g. XX for stateless
    max_length: int | None = None
    pattern: str = ""
    min: object = None
    max: object = None
    not_future: bool = False
    not_before: str = ""
    not_after: str = ""

    @cached_property  # asked for every answer validated: computed once per definition
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.choices)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    fields: tuple[Field, ...]
    hint: str = ""
    sensitive: bool = False
    relevant: Condition | None = None


@dataclass(frozen=True)
class Privacy:
    """What a form of personal data keeps: its purpose, the consent it needs, what a record
    without consent may hold (`minimum`) and what stays once its retention ends (`keep`)."""

    purpose: str = ""  # a fixed purpose for every record of the form
    purpose_field: str = ""  # or the question that records it
    consent: Condition | None = None  # holds when consent was given; None: no consent asked
    minimum: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormDefinition:
    form: str
    version: int
    title: str
    sections: tuple[Section, ...]
    search_name: tuple[str, ...] = ()
    search_document: str = ""
    anonymous: Condition | None = None
    privacy: Privacy | None = None  # None: the form holds no personal data
    fields_by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def fields(self) -> tuple[Field, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    @cached_property
    def answer_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type != "note")

    def is_anonymous(self, answers: dict) -> bool:
        return self.anonymous is not None and self.anonymous.holds(answers)

    def section_of(self, field_name: str) -> Section:
        return next(s for s in self.sections if any(f.name == field_name for f in s.fields))


def _condition(spec, named: dict[str, Condition], where: str) -> Condition | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in named:
            raise DefinitionError(f"{where}: unknown condition {spec!r}")
        return named[spec]
    if "in" in spec:
        return Condition(spec["field"], tuple(spec["in"]))
    if "not_in" in spec:
        return Condition(spec["field"], tuple(spec["not_in"]), negate=True)
    raise DefinitionError(f"{where}: a condition needs 'in' or 'not_in'")


def parse(data: dict) -> FormDefinition:
    """Build a checked FormDefinition from a parsed definition file."""
    named = {k: _condition(v, {}, f"condition {k}") for k, v in data.get("conditions", {}).items()}
    lists = {
        name: tuple(Choice(code, label) for code, label in entries.items())
        for name, entries in data.get("lists", {}).items()
    }
    sections = []
    for s in data["sections"]:
        fields = []
        for f in s["fields"]:
            where = f"field {f.get('name')}"
            if f["type"] not in FIELD_TYPES:
                raise DefinitionError(f"{where}: unknown type {f['type']!r}")
            required = f.get("required", False)
            choices = ()
            if f["type"] in ("choice", "multichoice"):
                if f.get("list") not in lists:
                    raise DefinitionError(f"{where}: unknown list {f.get('list')!r}")
                choices = lists[f["list"]]
            fields.append(Field(
                name=f["name"], type=f["type"], label=f["label"], section=s["id"],
                hint=f.get("hint", ""),
                required=required is True,
                required_if=_condition(required, named, where) if isinstance(required, str) else None,
                relevant=_condition(f.get("relevant"), named, where),
                choices=choices, list_name=f.get("list", ""), widget=f.get("widget", "select"),
                exclusive=tuple(f.get("exclusive", ())), extra=tuple(f.get("extra", ())),
                max_length=f.get("max_length"), pattern=f.get("pattern", ""),
                min=f.get("min"), max=f.get("max"), not_future=f.get("not_future", False),
                not_before=f.get("not_before", ""), not_after=f.get("not_after", ""),
            ))
        sections.append(Section(
            id=s["id"], title=s["title"], fields=tuple(fields), hint=s.get("hint", ""),
            sensitive=s.get("sensitive", False),
            relevant=_condition(s.get("relevant"), named, f"section {s['id']}"),
        ))
    search = data.get("search", {})
    definition = FormDefinition(
        form=data["form"], version=data["version"], title=data["title"], sections=tuple(sections),
        search_name=tuple(search.get("name", ())), search_document=search.get("document", ""),
        anonymous=_condition(data.get("anonymous"), named, "anonymous"),
        privacy=_privacy(data.get("privacy"), named),
    )
    definition.fields_by_name.update({f.name: f for f in definition.fields})
    _check_references(definition)
    return definition


def _privacy(spec: dict | None, named: dict[str, Condition]) -> Privacy | None:
    if spec is None:
        return None
    if bool(spec.get("purpose")) == bool(spec.get("purpose_field")):
        raise DefinitionError("privacy: give either a purpose or a purpose_field")
    return Privacy(
        purpose=spec.get("purpose", ""), purpose_field=spec.get("purpose_field", ""),
        consent=_condition(spec.get("consent"), named, "privacy consent"),
        minimum=tuple(spec.get("minimum", ())), keep=tuple(spec.get("keep", ())),
    )


def _check_references(definition: FormDefinition) -> None:
    texts = [definition.title]
    for section in definition.sections:
        texts += [section.title, section.hint]
        for f in section.fields:
            texts += [f.label, f.hint, *(c.label for c in f.choices)]
    if any("%" in t for t in texts):
        # Templates translate with new-style gettext, which %-formats every message.
        raise DefinitionError(f"{definition.form}: '%' in a label breaks translation; spell it out")
    names = definition.fields_by_name
    if len(names) != len(definition.fields):
        raise DefinitionError(f"{definition.form}: duplicate field names")
    order = [f.name for f in definition.fields]
    for section in definition.sections:
        first = order.index(section.fields[0].name) if section.fields else len(order)
        if section.relevant and section.relevant.field not in order[:first]:
            raise DefinitionError(f"section {section.id}: condition on a later or unknown field")
    for f in definition.fields:
        for ref in (f.not_before, f.not_after):
            if ref and ref not in names:
                raise DefinitionError(f"field {f.name}: unknown field {ref!r}")
        earlier = order[: order.index(f.name)]
        for c in filter(None, (f.relevant, f.required_if)):
            if c.field not in earlier:
                raise DefinitionError(f"field {f.name}: condition on a later or unknown field")
    for ref in (*definition.search_name, definition.search_document):
        if ref and ref not in names:
            raise DefinitionError(f"search on unknown field {ref!r}")
    privacy = definition.privacy
    if privacy:
        for ref in (privacy.purpose_field, *privacy.minimum, *privacy.keep):
            if ref and ref not in names:
                raise DefinitionError(f"privacy: unknown field {ref!r}")


def load_file(path: Path) -> FormDefinition:
    with open(path, "rb") as f:
        definition = parse(tomllib.load(f))
    match = _FILE_NAME.match(path.name)
    if not match or (match["form"], int(match["version"])) != (definition.form, definition.version):
        raise DefinitionError(f"{path.name}: file name must be <form>-<version>.toml")
    return definition


@cache
def definitions() -> dict[tuple[str, int], FormDefinition]:
    """Every shipped definition, by (form, version)."""
    loaded = (load_file(p) for p in sorted(DEFINITIONS.glob("*.toml")))
    return {(d.form, d.version): d for d in loaded}


def get(form: str, version: int | None = None) -> FormDefinition | None:
    """A definition by name and version (the latest when version is None), or None."""
    found = definitions()
    if version is None:
        versions = [v for (f, v) in found if f == form]
        return found[(form, max(versions))] if versions else None
    return found.get((form, version))
