"""Export formats: what `export` makes of records and what the writers put in files, read back."""

from __future__ import annotations

import csv
import io
import json
import tomllib
import zipfile
from datetime import date, datetime

import openpyxl
import pytest
from openpyxl.utils.escape import unescape

from fieldapp.forms import export, schema, writers
from fieldapp.forms.export import Column, Options
from fieldapp.forms.validate import validate

TODAY = date(2026, 11, 21)
KEY = b"partner-key-0123456789"
OTHER_KEY = b"another-key-9876543210"
INTAKE = schema.get("intake")
PARTICIPANT_UUID = "0f9c2b1e-5d3a-4c7b-9e8f-1a2b3c4d5e6f"

# The personal data of the records below: none of it may appear in a pseudonymised export.
PERSONAL = {
    "given_names": ["María José", "Jean-Robert", "Yusleidy"],
    "first_surname": ["Núñez", "Saint-Louis", "Peña"],
    "second_surname": ["Ibáñez de la Cruz", "", "Gutiérrez"],
    "doc_number": ["V-24.567.890", "AB1234567", "RS-2024-001122"],
    "phone": ["+58 412 555 0101", "+509 3444 5566", "+57 300 123 4567"],
    "notes": ["Refiere amenazas; llamar a su hermana en Cúcuta.", "Parle kreyòl.",
              "=HYPERLINK(\"http://evil.example\",\"clic\")"],
}
OFFICERS = ["ana.officer", "luis.officer", "=cmd|' /C calc'!A0"]
DEVICES = ["post-a-laptop-1", "post-a-phone-2", "@SUM(1+1)"]


def _answers(i: int) -> dict:
    raw = {
        "consent": "given", "purpose": "assistance", "interview_date": "2026-10-0" + str(i + 1),
        "given_names": PERSONAL["given_names"][i], "first_surname": PERSONAL["first_surname"][i],
        "second_surname": PERSONAL["second_surname"][i], "sex": ["female", "male", "female"][i],
        "birth_date_known": "yes", "birth_date": ["1990-02-14", "1985-12-31", "2001-07-04"][i],
        "nationality": ["VE", "HT", "XX"][i], "residence_country": "CO",
        "doc_type": ["national_id", "passport", "refugee_document"][i],
        "doc_number": PERSONAL["doc_number"][i], "doc_country": ["VE", "HT", "CO"][i],
        "migratory_status": "in_transit", "migration_reasons": [["economic", "violence"], ["family"],
                                                                ["health"]][i],
        "travelling": "family", "accompanying_adults": "1", "accompanying_minors": str(i),
        "unaccompanied_minor": "no", "languages": [["es"], ["ht", "fr"], ["es", "en"]][i],
        "phone": PERSONAL["phone"][i], "notes": PERSONAL["notes"][i],
        "certified_skills": ["-Técnica en enfermería", "", "+Costura industrial"][i],
    }
    result = validate(INTAKE, raw, TODAY)
    assert result.ok, result.errors
    return result.answers


def _record(i: int, **extra) -> dict:
    return {
        "uuid": f"00000000-0000-4000-8000-00000000000{i}", "form": "intake", "form_version": 1,
        "post": "POST-A", "device": DEVICES[i], "created_by": OFFICERS[i],
        "created_at": f"2026-10-0{i + 1}T14:0{i}:00Z", "updated_at": f"2026-10-0{i + 1}T15:00:00Z",
        "revision": 1 + i, "deleted": 0, "person": PARTICIPANT_UUID if i == 1 else "", "parent": "",
        "received_at": f"2026-10-1{i}T09:00:00Z" if i < 2 else "", "answers": _answers(i),
        **extra,
    }


RECORDS = [_record(i) for i in range(3)]


# ------------------------------------------------------------------ reading files back


def read_back(fmt: str, data: bytes, sheet: str = "data") -> tuple[list, list[list]]:
    """(header, rows) of a written file, cells as the format gives them."""
    if fmt == "csv":
        assert data.startswith(b"\xef\xbb\xbf"), "CSV must start with a UTF-8 BOM"
        table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        return table[0], table[1:]
    if fmt == "jsonl":
        assert not data.startswith(b"\xef\xbb\xbf")
        objects = [json.loads(line) for line in data.decode("utf-8").splitlines()]
        return (list(objects[0]) if objects else []), [list(o.values()) for o in objects]
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    # openpyxl leaves the _x000D_ escapes of inline strings (Excel shows a carriage return)
    table = [[unescape(v) if isinstance(v, str) else v for v in r]
             for r in book[sheet].iter_rows(values_only=True)]
    return table[0], table[1:]


def as_text(value) -> str:
    """One cell as the CSV shows it: how the three formats are compared."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)


def expected(fmt: str, row: list) -> list[str]:
    cells = row if fmt == "jsonl" else [export.neutralise(v) for v in row]
    return [as_text(v) for v in cells]


def write(fmt: str, columns, rows, **kwargs) -> bytes:
    out = io.BytesIO()
    {"csv": writers.write_csv, "xlsx": writers.write_xlsx, "jsonl": writers.write_jsonl}[fmt](
        out, columns, rows, **kwargs)
    return out.getvalue()


def cell(columns: list[Column], row: list, name: str):
    return row[[c.name for c in columns].index(name)]


# ------------------------------------------------------------------ round trips

OPTIONS = [
    Options(),
    Options(labels="labels", lang="es", headers="labels"),
    Options(labels="labels", lang="en"),
    Options(labels="both", lang="es"),
    Options(labels="both", lang="en", headers="labels", profile="pseudonymised", key=KEY),
]


@pytest.mark.parametrize("fmt", writers.FORMATS)
@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_every_format_reads_back_as_written(fmt, options):
    columns = export.columns(INTAKE, options)
    rows = list(export.rows(INTAKE, RECORDS, options))
    header, got = read_back(fmt, write(fmt, columns, iter(rows)))
    names = [c.name for c in columns]
    assert header == (names if fmt == "jsonl" else [c.header for c in columns])
    assert len(got) == len(RECORDS)
    assert [[as_text(v) for v in r] for r in got] == [expected(fmt, r) for r in rows]


@pytest.mark.parametrize(("options", "headers", "sex", "reasons", "nationality"), [
    (Options(), ["record_id", "sex", "nationality"], ["female", "male"], ["economic violence"],
     ["VE", "HT", "XX"]),
    (Options(labels="labels", lang="en", headers="labels"), ["Record id", "Sex", "Nationality"],
     ["Female", "Male"], ["Work or economic reasons; Violence or insecurity"],
     ["Venezuela", "Haiti", "Stateless"]),
    (Options(labels="labels", lang="es", headers="labels"), ["Id. del registro", "Sexo", "Nacionalidad"],
     ["Femenino", "Masculino"], ["Trabajo o motivos económicos; Violencia o inseguridad"],
     ["Venezuela", "Haití", "Apátrida"]),
])
def test_codes_labels_and_headers_in_both_languages(options, headers, sex, reasons, nationality):
    columns = export.columns(INTAKE, options)
    shown = [c.header for c in columns]
    assert [shown[0], *(c.header for c in columns if c.name in ("sex", "nationality"))] == headers
    rows = list(export.rows(INTAKE, RECORDS, options))
    assert [cell(columns, r, "sex") for r in rows[:2]] == sex
    assert cell(columns, rows[0], "migration_reasons") == reasons[0]
    assert [cell(columns, r, "nationality") for r in rows] == nationality


def test_both_gives_a_code_column_and_a_label_column():
    options = Options(labels="both", lang="es", headers="labels")
    columns = export.columns(INTAKE, options)
    by_name = {c.name: c for c in columns}
    assert by_name["sex"].header == "Sexo (código)" and by_name["sex_label"].header == "Sexo"
    row = next(export.rows(INTAKE, RECORDS, options))
    assert (cell(columns, row, "languages"), cell(columns, row, "languages_label")) == ("es", "español")
    assert (cell(columns, row, "doc_type"), cell(columns, row, "doc_type_label")) == (
        "national_id", "Cédula o documento nacional de identidad")


def test_columns_are_ids_then_provenance_then_answers_in_form_order():
    names = [c.name for c in export.columns(INTAKE, Options())]
    provenance = ["record_id", "person_id", "parent_id", "post", "device", "officer", "captured_at",
                  "updated_at", "received_at", "revision", "form_version"]
    assert names == provenance + [f.name for f in INTAKE.answer_fields]
    row = next(export.rows(INTAKE, RECORDS[1:], Options()))
    assert row[:11] == [RECORDS[1]["uuid"], PARTICIPANT_UUID, None, "POST-A", DEVICES[1], OFFICERS[1],
                        "2026-10-02T14:01:00Z", "2026-10-02T15:00:00Z", "2026-10-11T09:00:00Z", 2, 1]


def test_accents_survive_every_format():
    options = Options(labels="labels", lang="es")
    columns = export.columns(INTAKE, options)
    for fmt in writers.FORMATS:
        _, got = read_back(fmt, write(fmt, columns, export.rows(INTAKE, RECORDS, options)))
        text = {as_text(v) for r in got for v in r}
        assert {"María José", "Núñez", "Ibáñez de la Cruz", "Haití", "Apátrida"} <= text, fmt


def test_multichoice_is_one_cell_codes_by_spaces_labels_by_semicolons():
    codes, labels = Options(), Options(labels="labels")
    row = list(export.rows(INTAKE, RECORDS[1:2], codes))[0]
    assert cell(export.columns(INTAKE, codes), row, "languages") == "ht fr"
    row = list(export.rows(INTAKE, RECORDS[1:2], labels))[0]
    assert cell(export.columns(INTAKE, labels), row, "languages") == "Haitian Creole; French"


def test_types_are_kept_where_the_format_has_them():
    columns = export.columns(INTAKE, Options())
    rows = list(export.rows(INTAKE, RECORDS, Options()))
    _, xlsx = read_back("xlsx", write("xlsx", columns, iter(rows)))
    assert cell(columns, xlsx[0], "birth_date") == datetime(1990, 2, 14)
    assert cell(columns, xlsx[2], "accompanying_minors") == 2
    assert cell(columns, xlsx[0], "second_surname") == "Ibáñez de la Cruz"
    _, jsonl = read_back("jsonl", write("jsonl", columns, iter(rows)))
    assert cell(columns, jsonl[0], "birth_date") == "1990-02-14"
    assert cell(columns, jsonl[2], "accompanying_minors") == 2
    assert cell(columns, jsonl[0], "estimated_age") is None


# ------------------------------------------------------------------ codebook


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_the_codebook_has_one_row_per_column_in_both_languages(options):
    head, rows = export.codebook(INTAKE, options)
    rows = list(rows)
    assert [c.name for c in head] == ["variable", "label_en", "label_es", "type", "choices"]
    assert [r[0] for r in rows] == [c.name for c in export.columns(INTAKE, options)]
    by_name = {r[0]: r for r in rows}
    assert by_name["sex"][1:4] == ["Sex", "Sexo", "choice"]
    assert "female = Female / Femenino" in by_name["sex"][4]
    assert by_name["nationality"][4] == "ISO 3166-1 alpha-2; XX = Stateless / Apátrida"
    assert by_name["interview_date"][3:] == ["date", ""]
    assert by_name["captured_at"][1:4] == ["Captured at (UTC)", "Fecha de captura (UTC)", "datetime"]


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_the_codebook_goes_with_the_data_in_the_same_format(fmt, tmp_path):
    options = Options(labels="both", lang="es", headers="labels")
    path = tmp_path / f"intake{writers.SUFFIXES[fmt]}"
    n, paths = writers.write(fmt, path, export.columns(INTAKE, options),
                             export.rows(INTAKE, RECORDS, options),
                             codebook=export.codebook(INTAKE, options))
    assert n == len(RECORDS)
    if fmt == "xlsx":
        assert paths == [path]
        assert openpyxl.load_workbook(path, read_only=True).sheetnames == ["data", "codebook"]
        header, rows = read_back(fmt, path.read_bytes(), sheet="codebook")
    else:
        assert paths == [path, tmp_path / f"intake.codebook{writers.SUFFIXES[fmt]}"]
        header, rows = read_back(fmt, paths[1].read_bytes())
    if fmt == "jsonl":
        assert header == ["variable", "label_en", "label_es", "type", "choices"]
    else:
        assert header == ["Variable", "Etiqueta (inglés)", "Etiqueta (español)", "Tipo", "Opciones"]
    assert [r[0] for r in rows] == [c.name for c in export.columns(INTAKE, options)]


# ------------------------------------------------------------------ pseudonymised profile


def _all_text(fmt: str, data: bytes) -> str:
    if fmt == "xlsx":  # every part of the package, uncompressed
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "".join(z.read(name).decode("utf-8") for name in z.namelist())
    return data.decode("utf-8-sig")


@pytest.mark.parametrize("fmt", writers.FORMATS)
@pytest.mark.parametrize("labels", export.LABELS)
def test_pseudonymised_exports_hold_no_personal_data(fmt, labels):
    options = Options(profile="pseudonymised", key=KEY, labels=labels)
    text = _all_text(fmt, write(fmt, export.columns(INTAKE, options), export.rows(INTAKE, RECORDS, options)))
    secrets = [v for values in PERSONAL.values() for v in values if v]
    secrets += OFFICERS + DEVICES + [r["uuid"] for r in RECORDS] + [PARTICIPANT_UUID]
    secrets += ["1990-02-14", "1985-12-31", "2001-07-04"]
    # Values as stored too: phone numbers lose their separators when validated.
    secrets += [r["answers"]["phone"] for r in RECORDS]
    for secret in secrets:
        for form in {secret, json.dumps(secret)[1:-1]}:  # as is, and as JSON escapes it
            assert form not in text, secret
    assert "Venezuela" in text or "VE" in text  # the export is not simply empty


def test_pseudonymised_columns_drop_free_text_by_type_and_keep_the_birth_year():
    options = Options(profile="pseudonymised", key=KEY)
    columns = export.columns(INTAKE, options)
    names = {c.name for c in columns}
    free_text = {f.name for f in INTAKE.answer_fields if f.type in ("text", "textarea", "phone")}
    assert free_text >= {"given_names", "first_surname", "doc_number", "phone", "notes", "consent_reason"}
    assert not names & (free_text | {"device", "officer", "birth_date"})
    rows = list(export.rows(INTAKE, RECORDS, options))
    assert [cell(columns, r, "birth_date_year") for r in rows] == [1990, 1985, 2001]
    assert [cell(columns, r, "sex") for r in rows] == ["female", "male", "female"]
    kinds = {r[0]: r[3] for r in export.codebook(INTAKE, options)[1]}
    assert (kinds["record_id"], kinds["person_id"], kinds["birth_date_year"]) == ("pseudonym", "pseudonym",
                                                                                   "year")


def test_pseudonyms_are_stable_per_key_and_differ_between_keys():
    def ids(key):
        options = Options(profile="pseudonymised", key=key)
        columns = export.columns(INTAKE, options)
        return [(cell(columns, r, "record_id"), cell(columns, r, "person_id"))
                for r in export.rows(INTAKE, RECORDS, options)]

    first, again, other = ids(KEY), ids(KEY), ids(OTHER_KEY)
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))
    assert all(len(h) == export.PSEUDONYM_HEX and int(h, 16) >= 0 for pair in first for h in pair)
    # A person keeps one pseudonym across forms: the intake of a participant points at them.
    assert first[1][1] == export.pseudonym(PARTICIPANT_UUID, KEY) != first[1][0]
    assert first[0][0] == first[0][1]  # an intake of nobody else is its own person


@pytest.mark.parametrize(("key", "ok"), [(b"", False), (b"short", False), (KEY, True)])
def test_the_pseudonymised_profile_needs_a_real_key(key, ok):
    if ok:
        Options(profile="pseudonymised", key=key)
    else:
        with pytest.raises(export.OptionError) as caught:
            Options(profile="pseudonymised", key=key)
        assert caught.value.option == "key" and repr(key) not in str(caught.value)
    assert "key" not in repr(Options(profile="pseudonymised", key=KEY))


# ------------------------------------------------------------------ formula injection

INJECTIONS = ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "＝1+2", "=HYPERLINK(\"x\")"]


@pytest.mark.parametrize(("value", "neutral"), [
    *((v, "'" + v) for v in INJECTIONS),
    ("María", "María"), ("", ""), ("a=b", "a=b"), (" =1", " =1"), (-5, -5), (None, None), (3, 3),
])
def test_neutralise(value, neutral):
    assert export.neutralise(value) == neutral


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_formula_injection_is_neutralised_in_spreadsheet_formats_only(fmt):
    columns = [Column("a", "=header"), Column("b", "b"), Column("n", "n", "integer")]
    rows = [[v, "ok", -1] for v in INJECTIONS]
    data = write(fmt, columns, iter(rows))
    header, got = read_back(fmt, data)
    if fmt == "jsonl":
        assert [r[0] for r in got] == INJECTIONS
        return
    assert header[0] == "'=header"
    assert [r[0] for r in got] == ["'" + v for v in INJECTIONS]
    assert [r[2] for r in got] == (["-1"] * len(rows) if fmt == "csv" else [-1] * len(rows))
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data))["data"]
        assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)


def test_record_values_are_neutralised_in_a_real_export():
    columns = export.columns(INTAKE, Options())
    data = write("csv", columns, export.rows(INTAKE, RECORDS, Options()))
    _, got = read_back("csv", data)
    assert cell(columns, got[0], "certified_skills") == "'-Técnica en enfermería"
    assert cell(columns, got[2], "officer") == "'=cmd|' /C calc'!A0"
    assert cell(columns, got[2], "notes").startswith("'=HYPERLINK(")
    assert cell(columns, got[0], "phone") == "'+584125550101"


# ------------------------------------------------------------------ versions, deletions, edges


def _intake_version_2():
    """intake-2: `messaging_app` dropped, `email` added, `purpose` without `statistics`."""
    with open(schema.DEFINITIONS / "intake-1.toml", "rb") as f:
        data = tomllib.load(f)
    data["version"] = 2
    contact = next(s for s in data["sections"] if s["id"] == "contact")
    contact["fields"] = [f for f in contact["fields"] if f["name"] != "messaging_app"]
    contact["fields"].insert(1, {"name": "email", "type": "text", "label": "Email"})
    del data["lists"]["purpose"]["statistics"]
    return schema.parse(data)


def test_older_versions_get_the_columns_of_the_latest():
    latest = _intake_version_2()
    old = {**RECORDS[0], "answers": {**RECORDS[0]["answers"], "messaging_app": "whatsapp",
                                     "purpose": "statistics"}}
    for options in (Options(), Options(labels="labels", lang="es")):
        columns = export.columns(latest, options)
        names = [c.name for c in columns]
        assert "email" in names and "messaging_app" not in names
        row = next(export.rows(latest, [old], options))
        assert len(row) == len(columns)
        assert cell(columns, row, "email") is None
        assert cell(columns, row, "form_version") == 1
        # A code the latest version dropped keeps its label from the version that had it.
        assert cell(columns, row, "purpose") == (
            "statistics" if options.labels == "codes" else "Solo fines estadísticos")


def test_a_deleted_column_on_request():
    assert "deleted" not in [c.name for c in export.columns(INTAKE, Options())]
    options = Options(deleted=True)
    columns = export.columns(INTAKE, options)
    gone = {**RECORDS[2], "deleted": 1}
    rows = list(export.rows(INTAKE, [RECORDS[0], gone], options))
    assert [cell(columns, r, "deleted") for r in rows] == [0, 1]
    assert "deleted" in [r[0] for r in export.codebook(INTAKE, options)[1]]


@pytest.mark.parametrize(("option", "value"), [
    ("labels", "names"), ("lang", "fr"), ("headers", "codes"), ("profile", "anonymous"),
])
def test_invalid_options_are_refused(option, value):
    with pytest.raises(export.OptionError) as caught:
        Options(**{option: value})
    assert caught.value.option == option and caught.value.allowed


@pytest.mark.parametrize("definition", schema.definitions().values(), ids=lambda d: f"{d.form}-{d.version}")
@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_every_shipped_form_exports_with_unique_columns(definition, options):
    columns = export.columns(definition, options)
    assert len({c.name for c in columns}) == len(columns)
    assert not {f.name for f in definition.answer_fields} & export.RESERVED
    _, book = export.codebook(definition, options)
    assert len(list(book)) == len(columns)


def test_a_field_named_like_a_provenance_column_is_refused():
    with open(schema.DEFINITIONS / "attendance-1.toml", "rb") as f:
        data = tomllib.load(f)
    data["sections"][0]["fields"][0]["name"] = "post"
    data.pop("privacy")  # it names the field renamed here
    with pytest.raises(export.ColumnClash):
        export.columns(schema.parse(data), Options())


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_no_rows_still_gives_the_header(fmt):
    columns = export.columns(INTAKE, Options())
    data = write(fmt, columns, iter([]))
    if fmt == "jsonl":
        assert data == b""  # JSON Lines has no header: its keys are the column names
    else:
        assert read_back(fmt, data) == ([c.header for c in columns], [])


@pytest.mark.parametrize("fmt", writers.FORMATS)
@pytest.mark.parametrize(("n", "reports"), [(25, [10, 20, 25]), (20, [10, 20]), (0, [0])])
def test_progress_is_reported_every_n_rows_and_at_the_end(fmt, n, reports):
    seen = []
    write(fmt, [Column("i", "i", "integer")], ([i] for i in range(n)), progress=seen.append, every=10)
    assert seen == reports


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_a_borrowed_file_stays_open(fmt, tmp_path):
    one = {"csv": writers.write_csv, "xlsx": writers.write_xlsx, "jsonl": writers.write_jsonl}[fmt]
    with open(tmp_path / "out", "wb") as f:
        assert one(f, [Column("a", "a")], [["x"]]) == 1
        assert not f.closed
    header, rows = read_back(fmt, (tmp_path / "out").read_bytes())
    assert rows == [["x"]]


def test_xlsx_continues_on_a_new_sheet_when_one_is_full(monkeypatch):
    monkeypatch.setattr(writers, "XLSX_MAX_ROWS", 3)  # a header and two rows per sheet
    data = write("xlsx", [Column("i", "i", "integer")], ([i] for i in range(5)))
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames == ["data", "data (2)", "data (3)"]
    assert [[r[0] for r in book[s].iter_rows(values_only=True)] for s in book.sheetnames] == [
        ["i", 0, 1], ["i", 2, 3], ["i", 4]]


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        writers.write("xls", tmp_path / "x.xls", [], [])
