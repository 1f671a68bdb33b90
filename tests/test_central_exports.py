"""Central: the merged records page (filters, provenance) and exports (web jobs, CLI, audit log)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from fieldapp.storage import db as storage_db
from fieldapp.storage import exports as export_store
from tests.central_data import central_app, seed  # noqa: F401 — the fixture
from tests.conftest import Client, csrf_token


@pytest.fixture
def data(central_app):  # noqa: F811
    db = storage_db.connect(central_app.config["DATABASE"])
    ids = seed(db)
    db.close()
    return ids


@pytest.fixture
def staff(central_app, data):  # noqa: F811
    return Client(central_app, "central")


def _uuids(html: str) -> set[str]:
    import re

    return set(re.findall(r'data-uuid="([0-9a-f-]{36})"', html))


# The records page -------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"ana", "rosa", "juan", "marie"}),
    ("post=POST-B", {"marie"}),
    ("nationality=VE", {"ana", "rosa"}),
    ("nationality=ve&sex=female", {"ana", "rosa"}),
    ("sex=male", {"juan"}),
    ("migratory_status=regular", {"rosa"}),
    ("q=perez", {"ana"}),
    ("q=nunez", {"ana"}),
    ("q=h4444", {"marie"}),
    ("start=2026-04-01&end=2026-05-31", {"rosa", "juan"}),
    ("course={course}", {"ana", "juan"}),
])
def test_the_records_page_filters_intakes_of_every_post(staff, data, query, expected):
    page = staff.get("/en/central/records?" + query.format(**data))
    assert page.status_code == 200
    assert _uuids(page.text) == {data[k] for k in expected}


@pytest.mark.parametrize(("query", "form", "count"), [
    ("form=attendance", "attendance", 4),
    ("form=attendance&sex=male", "attendance", 2),
    ("form=enrolment&nationality=CO", "enrolment", 1),
    ("form=session&course={course}", "session", 2),
    ("form=certificate", "certificate", 1),
    ("form=course&post=POST-B", "course", 0),
])
def test_training_records_are_filtered_through_their_person_and_course(staff, data, query, form, count):
    page = staff.get("/en/central/records?" + query.format(**data))
    assert page.status_code == 200
    assert len(_uuids(page.text)) == count


def test_each_row_shows_its_provenance(staff, data):
    page = staff.get("/en/central/records?post=POST-B")
    row = page.text[page.text.index(f'data-uuid="{data["marie"]}"'):]
    row = row[:row.index("</tr>")]
    for shown in ("Marie Joseph", "POST-B", "laptop-b", "officer_b", "Jun 1, 2026"):
        assert shown in row


@pytest.mark.parametrize(("query", "field", "message"), [
    ("form=passports", "form", "Choose one of the forms in the list."),
    ("post=%3Cscript%3E", "post", "A post code has letters"),
    ("start=2026-02-30", "start", "Enter a date as YYYY-MM-DD."),
    ("start=2026-05-01&end=2026-04-01", "end", "The end date is before the start date."),
    ("nationality=QQ", "nationality", "Choose a country from the list."),
    ("sex=unknown", "sex", "Choose one of the answers in the list."),
    ("course=nope", "course", "Choose a course from the list."),
    ("q=" + "x" * 101, "q", "Search for at most 100 characters."),
])
def test_invalid_filters_are_a_400_that_says_what_is_wrong(staff, query, field, message):
    page = staff.get("/en/central/records?" + query)
    assert page.status_code == 400
    assert f'id="e-{field}"' in page.text and message in page.text
    assert "data-uuid" not in page.text


def test_the_records_page_speaks_spanish(staff):
    page = staff.get("/es/central/records?start=2026-13-01")
    assert page.status_code == 400
    assert "Registros de todos los puestos" in page.text
    assert "Ingrese una fecha como AAAA-MM-DD." in page.text


def test_only_central_staff_browse_every_post(central_app, data):  # noqa: F811
    for username in ("admin",):
        assert Client(central_app, username).get("/en/central/records").status_code == 403


# Exports ----------------------------------------------------------------------------------------


def _start(staff: Client, **choices) -> str:
    form = {"dataset": "intake", "format": "csv", "labels": "codes", "lang": "en", "headers": "variables",
            "profile": "pseudonymised", "purpose": "", **choices}
    page = staff.get("/en/central/exports/")
    response = staff.http.post("/en/central/exports/", data={"csrf_token": csrf_token(page.text), **form})
    assert response.status_code == 303, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


def _wait(staff: Client, export_id: str) -> dict:
    for _ in range(300):
        state = staff.get(f"/en/central/exports/{export_id}/progress").get_json()
        if state["status"] != "running":
            return state
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


def _download(staff: Client, export_id: str):
    state = _wait(staff, export_id)
    assert state["status"] == "done", state
    response = staff.get(state["download"])
    assert response.status_code == 200
    return response


def _zip_csv(response) -> tuple[list[dict], list[dict], bytes]:
    bundle = zipfile.ZipFile(io.BytesIO(response.data))
    names = sorted(bundle.namelist())
    data, book = (n for n in names if "codebook" not in n), (n for n in names if "codebook" in n)
    raw = bundle.read(next(data))
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    codebook = list(csv.DictReader(io.StringIO(bundle.read(next(book)).decode("utf-8-sig"))))
    return rows, codebook, raw


def test_a_full_csv_export_with_labels_in_spanish(staff, data):
    export_id = _start(staff, profile="full", purpose="Informe trimestral al donante", labels="both",
                       lang="es", format="csv")
    response = _download(staff, export_id)
    assert response.headers["Content-Type"] == "application/zip"
    assert "intake-" in response.headers["Content-Disposition"]
    rows, codebook, raw = _zip_csv(response)
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads the accents
    assert {r["record_id"] for r in rows} == {data[k] for k in ("ana", "rosa", "juan", "marie")}
    ana = next(r for r in rows if r["record_id"] == data["ana"])
    assert ana["first_surname"] == "Pérez" and ana["post"] == "POST-A"
    assert ana["sex"] == "female" and ana["sex_label"] == "Femenino"
    marie = next(r for r in rows if r["record_id"] == data["marie"])
    assert marie["notes"].startswith("'=")  # neutralised against formula injection
    assert {"variable", "label_en", "label_es", "type", "choices"} <= set(codebook[0])
    assert any(c["variable"] == "sex" and "female" in c["choices"] for c in codebook)


def test_a_pseudonymised_xlsx_export_holds_no_names_documents_or_phones(staff, data, central_app):  # noqa: F811
    export_id = _start(staff, format="xlsx", labels="labels", headers="labels")
    response = _download(staff, export_id)
    workbook = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
    cells = [c for ws in workbook.worksheets for row in ws.iter_rows(values_only=True) for c in row
             if c is not None]
    text = " ".join(str(c) for c in cells)
    for secret in ("Pérez", "Núñez", "V11111111", "+573001111111", "Llegó con su hija", "Marie",
                   data["ana"], "1990-"):
        assert secret not in text
    data_rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert len(data_rows) == 1 + 4


def test_attendance_long_table_and_participant_summary(staff, data):
    rows, codebook, _ = _zip_csv(_download(staff, _start(staff, dataset="attendance_table", profile="full",
                                                         purpose="Seguimiento")))
    assert len(rows) == 4
    assert {(r["person_id"], r["session_id"], r["status"]) for r in rows} == {
        (data["ana"], data["s1"], "present"), (data["ana"], data["s2"], "late"),
        (data["juan"], data["s1"], "absent"), (data["juan"], data["s2"], "present")}
    assert {r["course_title"] for r in rows} == {"Soldadura básica"}
    assert {c["variable"] for c in codebook} >= {"person_id", "session_date", "status"}
    rows, _, _ = _zip_csv(_download(staff, _start(staff, dataset="participant_summary", profile="full",
                                                  purpose="Seguimiento")))
    by_person = {r["person_id"]: r for r in rows}
    ana, juan = by_person[data["ana"]], by_person[data["juan"]]
    assert (ana["sessions_attended"], ana["certified"]) == ("2", "yes")
    assert (juan["attendance_percent"], juan["completed"], juan["certified"]) == ("50", "yes", "no")


def test_jsonl_export_keeps_raw_values(staff, data):
    bundle = zipfile.ZipFile(io.BytesIO(_download(staff, _start(
        staff, format="jsonl", profile="full", purpose="Análisis")).data))
    name = next(n for n in bundle.namelist() if "codebook" not in n)
    lines = [json.loads(line) for line in bundle.read(name).decode().splitlines()]
    assert any(line["notes"] == "=HYPERLINK(\"http://evil\")" for line in lines)


def test_only_what_changed_since_my_last_export(staff, data, central_app):  # noqa: F811
    first, _, _ = _zip_csv(_download(staff, _start(staff, incremental="1")))
    assert len(first) == 4
    again, _, _ = _zip_csv(_download(staff, _start(staff, incremental="1")))
    assert again == []
    from tests.central_data import save
    from tests.sync.harness import central_edit

    db = storage_db.connect(central_app.config["DATABASE"])
    central_edit(db, data["rosa"], migratory_status="irregular")
    import random

    from tests.sync.harness import intake_answers
    new = save(db, "intake", intake_answers(random.Random(3)), post="POST-B")
    db.close()
    changed, _, _ = _zip_csv(_download(staff, _start(staff, incremental="1")))
    assert {r["record_id"] for r in changed} != set()  # pseudonymised: ids are hashed
    assert len(changed) == 2
    full, _, _ = _zip_csv(_download(staff, _start(staff, incremental="1", profile="full", purpose="x")))
    assert {r["record_id"] for r in full} == {data["ana"], data["rosa"], data["juan"], data["marie"], new}


def test_every_export_is_in_the_audit_log(staff, data, central_app):  # noqa: F811
    _download(staff, _start(staff, profile="full", purpose="Informe al donante", format="csv"))
    db = storage_db.connect(central_app.config["DATABASE"])
    (row,) = export_store.log(db)
    db.close()
    assert (row["username"], row["profile"], row["purpose"], row["rows"], row["status"]) == (
        "central", "full", "Informe al donante", 4, "done")
    page = staff.get("/en/central/exports/")
    assert "Informe al donante" in page.text


@pytest.mark.parametrize(("choices", "field"), [
    ({"dataset": "passports"}, "dataset"),
    ({"format": "pdf"}, "format"),
    ({"labels": "colours"}, "labels"),
    ({"lang": "fr"}, "lang"),
    ({"headers": "both"}, "headers"),
    ({"profile": "everything"}, "profile"),
    ({"profile": "full", "purpose": "  "}, "purpose"),
    ({"dataset": "participant_summary", "incremental": "1"}, "incremental"),
    ({"start": "yesterday"}, "start"),
])
def test_bad_export_requests_are_refused_and_produce_nothing(staff, central_app, choices, field):  # noqa: F811
    form = {"dataset": "intake", "format": "csv", "labels": "codes", "lang": "en", "headers": "variables",
            "profile": "pseudonymised", "purpose": "", **choices}
    page = staff.get("/en/central/exports/")
    response = staff.http.post("/en/central/exports/", data={"csrf_token": csrf_token(page.text), **form})
    assert response.status_code == 400
    assert f'id="e-{field}"' in response.text
    db = storage_db.connect(central_app.config["DATABASE"])
    assert export_store.log(db) == []
    db.close()


def test_a_download_link_of_someone_elses_export_is_a_404(staff, central_app, data):  # noqa: F811
    export_id = _start(staff)
    _wait(staff, export_id)
    db = storage_db.connect(central_app.config["DATABASE"])
    db.execute("UPDATE exports SET username = 'central2' WHERE id = ?", [export_id])
    db.close()
    assert staff.get(f"/en/central/exports/{export_id}/download").status_code == 404
    assert staff.get(f"/en/central/exports/{export_id}").status_code == 404
    assert staff.get("/en/central/exports/nonexistent/download").status_code == 404


def test_the_command_line_exports_with_a_progress_bar(tmp_path, central_app, data):  # noqa: F811
    out = tmp_path / "out" / "intake.xlsx"
    out.parent.mkdir()
    (tmp_path / "fieldapp.toml").write_text(
        f'MODE = "central"\nPOST = "CENTRAL"\nSECRET_KEY = "test-secret"\n'
        f'DATABASE = "{central_app.config["DATABASE"]}"\n', encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "FIELDAPP_LANG": "en"}
    fieldapp = [str(Path(sys.executable).parent / "fieldapp"), "--instance", str(tmp_path)]
    done = subprocess.run([*fieldapp, "export", "intake", "--format", "xlsx", "--profile", "full",
                           "--purpose", "Auditoría", "--filter", "nationality=VE", "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 rows exported." in done.stdout
    sheet = openpyxl.load_workbook(out, read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows(values_only=True))) == 3
    bad = subprocess.run([*fieldapp, "export", "intake", "--profile", "full", "--filter", "sex=robot",
                          "-o", str(tmp_path / "x.csv")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0
    assert "sex: Choose one of the answers in the list." in bad.stderr
    assert "--purpose:" in bad.stderr
    assert not (tmp_path / "x.csv").exists()


def test_exports_show_a_merged_person_as_the_person_kept(staff, data, central_app):  # noqa: F811
    from fieldapp.storage import persons as person_store

    db = storage_db.connect(central_app.config["DATABASE"])
    person_store.set_verdict(db, data["rosa"], data["ana"], "merged", by="central")  # Ana is Rosa
    db.close()

    def export(dataset: str) -> list[dict]:
        job = _start(staff, dataset=dataset, profile="full", purpose="Informe")
        return _zip_csv(_download(staff, job))[0]

    intakes = {r["record_id"]: r["person_id"] for r in export("intake")}
    assert intakes[data["ana"]] == intakes[data["rosa"]] == data["rosa"]
    assert intakes[data["juan"]] == data["juan"]
    marks = export("attendance_table")
    assert sorted(r["person_id"] for r in marks) == sorted([data["rosa"]] * 2 + [data["juan"]] * 2)
    summary = {r["person_id"]: r for r in export("participant_summary")}
    assert set(summary) == {data["rosa"], data["juan"]}
    assert (summary[data["rosa"]]["sessions_attended"], summary[data["rosa"]]["certified"]) == ("2", "yes")

    db = storage_db.connect(central_app.config["DATABASE"])
    person_store.set_verdict(db, data["rosa"], data["ana"], "unmerged", by="central")  # undone
    db.close()
    assert {r["person_id"] for r in export("participant_summary")} == {data["ana"], data["juan"]}
