"""Export conversion: stored records as rows of cells, their columns and codebook, in either profile.

Pure and streaming: records go in one at a time, rows come out one at a time, nothing is kept
between them. No Flask and no SQL: the caller reads the records (storage), this module turns them
into cells, and `fieldapp.forms.writers` puts the cells in a file. Labels come from the Babel
catalogs, so headers and choice labels are in any shipped language without a request.

    opts = Options(labels="both", lang="es", profile="pseudonymised", key=secret)
    cols = columns(intake, opts)
    for row in rows(intake, records, opts): ...

The cells are the same for every format: strings, ints or None (an empty answer). Spreadsheet
formats pass every string cell through `neutralise` (the writers do it); JSON Lines keeps them raw.
docs/exports.md describes the columns, the codebook and the pseudonymised profile.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache

from babel import Locale
from babel.support import NullTranslations, Translations

from fieldapp import shipped_dir
from fieldapp.config import DEFAULTS
from fieldapp.domain.persons import PERSON_FORMS
from fieldapp.forms import countries, schema
from fieldapp.forms.schema import Field, FormDefinition

LABELS = ("codes", "labels", "both")
HEADERS = ("variables", "labels")
PROFILES = ("full", "pseudonymised")
LANGUAGES: tuple[str, ...] = tuple(DEFAULTS["LANGUAGES"])
MIN_KEY_BYTES = 16
PSEUDONYM_HEX = 16  # 64 bits of HMAC-SHA256: ~3·10⁻⁸ chance of any collision among a million ids

# Field types whose answers are typed by a person (names, document numbers, phone numbers, notes):
# the pseudonymised profile leaves them out whatever their name, so a new form is covered too.
FREE_TEXT_TYPES = frozenset({"text", "textarea", "phone"})
MULTICHOICE_CODES_SEPARATOR = " "  # codes never contain spaces
MULTICHOICE_LABELS_SEPARATOR = "; "  # labels may contain spaces and commas, never semicolons
LABEL_SUFFIX = "_label"
YEAR_SUFFIX = "_year"

# Cells a spreadsheet would read as a formula (or as the start of one after a tab or a return),
# with the full-width forms some spreadsheets also accept. OWASP: prefix them with a quote.
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated later, in the export's language."""
    return message


# Provenance: (variable, English label, codebook type, record key). Names are stable for scripts.
_RECORD_ID = ("record_id", N_("Record id"), "id", "uuid")
_PERSON_ID = ("person_id", N_("Person id"), "id", "person")
_PARENT_ID = ("parent_id", N_("Parent record id"), "id", "parent")
_PROVENANCE = (
    ("post", N_("Post"), "text", "post"),
    ("device", N_("Device"), "text", "device"),
    ("officer", N_("Officer"), "text", "created_by"),
    ("captured_at", N_("Captured at (UTC)"), "datetime", "created_at"),
    ("updated_at", N_("Last changed at (UTC)"), "datetime", "updated_at"),
    ("received_at", N_("Received at central (UTC)"), "datetime", "received_at"),
    ("revision", N_("Revision"), "integer", "revision"),
    ("form_version", N_("Form version"), "integer", "form_version"),
)
_DELETED = ("deleted", N_("Deleted"), "integer", "deleted")
_REMOVED_WHEN_PSEUDONYMISED = frozenset({"device", "officer"})
_ID_NAMES = frozenset({"record_id", "person_id", "parent_id"})
RESERVED = frozenset(spec[0] for spec in (_RECORD_ID, _PERSON_ID, _PARENT_ID, *_PROVENANCE, _DELETED))

_CODE_HEADER = N_("%(label)s (code)")
_YEAR_HEADER = N_("%(label)s (year)")
# Extra country codes a form may offer besides ISO 3166-1 (as in fieldapp/forms/builder.py).
_EXTRA_COUNTRIES = {"XX": N_("Stateless")}

_CODEBOOK_HEADERS = {
    "variable": N_("Variable"), "type": N_("Type"), "choices": N_("Choices"),
}
_CODEBOOK_LABEL_HEADER = N_("Label (%(language)s)")
_COUNTRY_CHOICES = "ISO 3166-1 alpha-2"


class OptionError(ValueError):
    """An export option has a value it cannot take: `.option` names it, `.allowed` lists the values."""

    def __init__(self, option: str, value, allowed: Iterable[str] = ()):
        self.option, self.value, self.allowed = option, value, tuple(allowed)
        shown = "" if option == "key" else f" {value!r}"
        hint = f"; one of {', '.join(self.allowed)}" if self.allowed else ""
        super().__init__(f"invalid export option {option}{shown}{hint}")


class ColumnClash(ValueError):
    """A form field has the name of a provenance column (or of another field's label column)."""


@dataclass(frozen=True)
class Options:
    """How records become cells. Invalid values raise OptionError at construction."""

    labels: str = "codes"  # choice answers as "codes", "labels" (in lang) or "both" (var and var_label)
    lang: str = "en"  # language of labels and headers
    headers: str = "variables"  # column headers as stable "variables" or "labels" (in lang)
    profile: str = "full"  # "full" or "pseudonymised"
    key: bytes = b""  # secret of the keyed hash of ids in the pseudonymised profile
    deleted: bool = False  # add a `deleted` column (1 for a deleted record, else 0)

    def __post_init__(self):
        for option, allowed in (("labels", LABELS), ("lang", LANGUAGES), ("headers", HEADERS),
                                ("profile", PROFILES)):
            if getattr(self, option) not in allowed:
                raise OptionError(option, getattr(self, option), allowed)
        if not isinstance(self.key, bytes):
            raise OptionError("key", self.key)
        if self.pseudonymised and len(self.key) < MIN_KEY_BYTES:
            raise OptionError("key", self.key)

    @property
    def pseudonymised(self) -> bool:
        return self.profile == "pseudonymised"

    def __repr__(self) -> str:  # never print the key
        return (f"Options(labels={self.labels!r}, lang={self.lang!r}, headers={self.headers!r}, "
                f"profile={self.profile!r}, deleted={self.deleted!r})")


@dataclass(frozen=True)
class Column:
    """One column of an export: `name` is the stable variable, `header` what the file shows."""

    name: str
    header: str
    type: str = "text"  # the codebook type; writers store "integer" and "date" cells natively


# ------------------------------------------------------------------ labels in any language


@cache
def translations(lang: str) -> NullTranslations:
    """The catalog of `lang` (English needs none: its messages are the msgids)."""
    return Translations.load(str(shipped_dir("translations")), [lang])


def translate(message: str, lang: str) -> str:
    """A message in `lang`: `translate("Sex", "es") == "Sexo"`."""
    return translations(lang).gettext(message)


def field_label(f: Field, lang: str) -> str:
    """A field's label in `lang`: `field_label(sex, "es") == "Sexo"`."""
    return translate(f.label, lang)


@lru_cache(maxsize=256)
def choice_labels(f: Field, lang: str, form: str = "") -> dict[str, str]:
    """code → label in `lang` for a choice, multichoice or country field of `form`.

    Codes of older versions of the form keep their label (an older record may hold one); an
    empty label in a definition means the language's name from Babel's locale data.
    """
    if f.type == "country":
        labels = dict(countries.names(lang))
        labels.update({code: translate(label, lang) for code, label in _EXTRA_COUNTRIES.items()})
        return labels
    languages = Locale.parse(lang).languages
    labels: dict[str, str] = {}
    for choice in (*_older_choices(f, form), *f.choices):
        labels[choice.code] = translate(choice.label, lang) if choice.label else languages.get(
            choice.code, choice.code)
    return labels


def _older_choices(f: Field, form: str) -> list:
    """The choices of the same field in every shipped version of `form`, oldest first."""
    found = []
    for (name, _), d in sorted(schema.definitions().items()):
        other = d.fields_by_name.get(f.name) if name == form else None
        if other is not None and other.type == f.type:
            found.extend(other.choices)
    return found


def choice_label(f: Field, code: str, lang: str, form: str = "") -> str:
    """One code's label in `lang`, or the code itself if no version of the form knows it."""
    return choice_labels(f, lang, form).get(code, code)


# ------------------------------------------------------------------ pseudonyms and neutralising


def pseudonym(value: str, key: bytes) -> str:
    """A stable keyed hash of an id: the same id and key always give the same 16 hex digits."""
    if not value:
        return ""
    keyed = _keyed(key).copy()  # copying the keyed state costs less than keying anew
    keyed.update(value.encode())
    return keyed.hexdigest()[:PSEUDONYM_HEX]


@lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def neutralise(value):
    """A cell a spreadsheet cannot run: `neutralise("=1+2") == "'=1+2"`; anything else unchanged."""
    if value.__class__ is str and value[:1] in FORMULA_START:
        return "'" + value
    return value


def is_birth_date(f: Field) -> bool:
    """Date fields reduced to their year in the pseudonymised profile (birth_date, mother_birth_date…)."""
    return f.type == "date" and "birth" in f.name


# ------------------------------------------------------------------ the plan: columns and cells


@dataclass(frozen=True)
class _Answer:
    """One answer column: which answer it reads and how it turns the stored value into a cell."""

    column: Column
    source: Field
    convert: Callable | None  # applied to non-empty values; None: the stored value as it is
    codebook_type: str


def _header(options: Options, variable: str, label: str) -> str:
    return variable if options.headers == "variables" else label


def _answer_columns(definition: FormDefinition, options: Options) -> list[_Answer]:
    lang, out = options.lang, []
    for f in definition.answer_fields:
        if options.pseudonymised and f.type in FREE_TEXT_TYPES:
            continue
        label = field_label(f, lang)
        if options.pseudonymised and is_birth_date(f):
            header = translate(_YEAR_HEADER, lang) % {"label": label}
            out.append(_Answer(Column(f.name + YEAR_SUFFIX, _header(options, f.name + YEAR_SUFFIX,
                                                                     header), "integer"),
                               f, _year, "year"))
            continue
        if f.type not in ("choice", "multichoice", "country"):
            out.append(_Answer(Column(f.name, _header(options, f.name, label), f.type), f, None, f.type))
            continue
        codes = _join_codes if f.type == "multichoice" else None
        labels = _labeller(f, lang, definition.form)
        if options.labels == "codes":
            out.append(_Answer(Column(f.name, _header(options, f.name, label), f.type), f, codes, f.type))
        elif options.labels == "labels":
            out.append(_Answer(Column(f.name, _header(options, f.name, label), f.type), f, labels,
                               f.type))
        else:
            code_header = translate(_CODE_HEADER, lang) % {"label": label}
            out.append(_Answer(Column(f.name, _header(options, f.name, code_header), f.type), f, codes,
                               f.type))
            name = f.name + LABEL_SUFFIX
            out.append(_Answer(Column(name, _header(options, name, label), "label"), f, labels, "label"))
    return out


def _join_codes(codes: list) -> str:
    return MULTICHOICE_CODES_SEPARATOR.join(codes)


def _year(iso: str) -> int | str:
    return int(iso[:4]) if iso[:4].isdigit() else ""


class _Labels(dict):
    """code → label; an unknown code is its own label. Indexing it is one C call per cell."""

    def __missing__(self, code):
        return code


def _labeller(f: Field, lang: str, form: str) -> Callable:
    label = _Labels(choice_labels(f, lang, form)).__getitem__
    if f.type == "multichoice":
        join = MULTICHOICE_LABELS_SEPARATOR.join
        return lambda codes: join(map(label, codes))
    return label


def _id_specs(definition: FormDefinition, options: Options) -> list[tuple]:
    specs = [_RECORD_ID, _PERSON_ID, _PARENT_ID]
    for spec in _PROVENANCE:
        if not (options.pseudonymised and spec[0] in _REMOVED_WHEN_PSEUDONYMISED):
            specs.append(spec)
    if options.deleted:
        specs.append(_DELETED)
    return specs


@dataclass(frozen=True)
class _Plan:
    form: str
    columns: tuple[Column, ...]
    specs: tuple[tuple, ...]  # the provenance columns' specs, in order
    answers: tuple[_Answer, ...]
    row: Callable[[dict], list]


@lru_cache(maxsize=64)
def _plan(definition: FormDefinition, options: Options) -> _Plan:
    specs = _id_specs(definition, options)
    answers = _answer_columns(definition, options)
    cols = [Column(name, _header(options, name, translate(label, options.lang)), kind)
            for name, label, kind, _ in specs]
    cols += [a.column for a in answers]
    seen: set[str] = set()
    for c in cols:
        if c.name in seen:
            raise ColumnClash(f"{definition.form}: two columns named {c.name!r}; rename the field")
        seen.add(c.name)
    return _Plan(definition.form, tuple(cols), tuple(specs), tuple(answers),
                 _row_function(definition, options, specs, answers))


def _row_function(definition: FormDefinition, options: Options, specs, answers) -> Callable:
    """One function per plan that turns a record into a row, with as little work per cell as can be.

    Stored answers leave unanswered questions out (the validator drops empty answers), so a
    missing key is the only empty answer to expect; an empty string or list is made None too.
    """
    person_form = definition.form in PERSON_FORMS
    key = options.key
    hashed = pseudonym if options.pseudonymised else None
    names = tuple(a.source.name for a in answers)
    conversions = tuple((i, a.convert) for i, a in enumerate(answers) if a.convert is not None)
    provenance = tuple(record_key for _, _, _, record_key in specs[3:])
    deleted = options.deleted
    no_answers: dict = {}

    def row(record: dict) -> list:
        uuid = record["uuid"]
        person = record.get("person") or (uuid if person_form else "")
        parent = record.get("parent") or ""
        if hashed is not None:
            own = person == uuid  # a registration is its own person: one hash for both
            uuid = hashed(uuid, key)
            person = uuid if own else hashed(person, key)
            parent = hashed(parent, key)
        cells = [uuid, person or None, parent or None,
                 *[None if v == "" else v for v in map(record.get, provenance)]]
        if deleted:
            cells[-1] = 1 if cells[-1] else 0
        first = len(cells)
        cells.extend(map((record.get("answers") or no_answers).get, names))
        for i, convert in conversions:
            value = cells[first + i]
            if value is not None:
                cells[first + i] = convert(value) if value != [] else None
        return cells

    return row


# ------------------------------------------------------------------ the public functions


def columns(definition: FormDefinition, options: Options) -> list[Column]:
    """The columns of an export of `definition`: ids, provenance, then the answers in form order."""
    return list(_plan(definition, options).columns)


def rows(definition: FormDefinition, records: Iterable[dict], options: Options) -> Iterator[list]:
    """One row per record, cells in the order of `columns`. Streams: one record in memory at a time.

    Records of an older version of the form get the columns of `definition` (pass the latest):
    answers to questions it no longer has are left out, questions it added are empty.
    """
    make = _plan(definition, options).row
    for record in records:
        yield make(record)


def codebook(definition: FormDefinition, options: Options) -> tuple[list[Column], Iterator[list]]:
    """The data dictionary of the same export: one row per column, in the same order.

    Columns: variable, one label per shipped language (label_en, label_es), type, choices
    ("code = English label / Spanish label; …"). Headers follow `options.headers`.
    """
    plan, lang = _plan(definition, options), options.lang
    languages = Locale.parse(lang).languages
    named = [(name, translate(label, lang)) for name, label in _CODEBOOK_HEADERS.items()]
    named[1:1] = [(f"label_{code}", translate(_CODEBOOK_LABEL_HEADER, lang)
                   % {"language": languages.get(code, code)}) for code in LANGUAGES]
    head = [Column(name, _header(options, name, label)) for name, label in named]
    return head, _codebook_rows(plan, options)


def _codebook_rows(plan: _Plan, options: Options) -> Iterator[list]:
    for name, label, kind, _ in plan.specs:
        if options.pseudonymised and name in _ID_NAMES:
            kind = "pseudonym"
        yield [name, *(translate(label, code) for code in LANGUAGES), kind, ""]
    for answer in plan.answers:
        f = answer.source
        labels = [field_label(f, code) for code in LANGUAGES]
        if answer.codebook_type == "year":
            labels = [translate(_YEAR_HEADER, code) % {"label": text} for code, text in zip(
                LANGUAGES, labels, strict=True)]
        yield [answer.column.name, *labels, answer.codebook_type,
               _choices_text(f, answer.codebook_type, plan.form)]


def choices_text(f: Field, form: str = "") -> str:
    """A choice field's codes with their labels in every language, as the codebook shows them."""
    return _choices_text(f, f.type, form)


def _choices_text(f: Field, kind: str, form: str) -> str:
    if kind not in ("choice", "multichoice", "country"):
        return ""
    if f.type == "country":
        extra = [f"{code} = {_both(choice_label(f, code, lang) for lang in LANGUAGES)}"
                 for code in f.extra]
        return "; ".join([_COUNTRY_CHOICES, *extra])
    return "; ".join(f"{c.code} = {_both(choice_label(f, c.code, lang, form) for lang in LANGUAGES)}"
                     for c in f.choices)


def _both(labels: Iterable[str]) -> str:
    return " / ".join(labels)
