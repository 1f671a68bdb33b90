"""Central staff filter the records of every post, start an XLSX export, watch its progress,
download it, and the file opens — in Chromium, against a real central server."""

from __future__ import annotations

import secrets
import subprocess
import time

import openpyxl
import pytest

from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations
from tests.browser.conftest import FIELDAPP, LAPTOP, PHONE, _answers, _child_env, _free_port, _run, _stop
from tests.central_data import seed


@pytest.fixture(scope="module")
def central(tmp_path_factory, playwright_session):
    instance = tmp_path_factory.mktemp("central")
    _run(instance, "init", "--central", "--password-stdin", stdin=secrets.token_urlsafe(16) + "\n")
    password = secrets.token_urlsafe(16)
    _run(instance, "users", "add", "analyst", "--role", "central", "--password-stdin", stdin=password + "\n")
    db = storage_db.connect(instance / "fieldapp.db")
    migrations.apply(db)
    ids = seed(db)
    db.close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(instance / "serve.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen([str(FIELDAPP), "--instance", str(instance), "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_child_env())
    deadline = time.monotonic() + 20
    while not _answers(url + "/"):
        assert proc.poll() is None and time.monotonic() < deadline, (instance / "serve.log").read_text()
        time.sleep(0.2)
    yield url, password, ids
    _stop(proc)


@pytest.mark.parametrize("device", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_filter_export_watch_download_open(central, browser, tmp_path, device):
    url, password, ids = central
    context = browser.new_context(locale="es-ES", accept_downloads=True, **device)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/es/login")
    page.fill("#username", "analyst")
    page.fill("#password", password)
    page.locator("main button[type=submit]").click()
    page.goto(url + "/es/central/records")
    page.select_option("#f-nationality", "VE")
    page.locator("#filter button[type=submit]").click()
    rows = page.locator("#records tbody tr")
    assert rows.count() == 2
    assert {rows.nth(i).get_attribute("data-uuid") for i in range(2)} == {ids["ana"], ids["rosa"]}
    page.get_by_role("link", name="Exportar estos registros").click()
    assert page.locator("#f-nationality").input_value() == "VE"  # the filters came along
    page.check("input[name=format][value=xlsx]")
    page.check("input[name=profile][value=full]")
    page.fill("#purpose", "Informe trimestral")
    page.check("input[name=labels][value=both]")
    page.locator("#export-form button[type=submit]").click()
    link = page.locator("#export-download")
    link.wait_for(state="visible", timeout=30_000)
    assert page.locator("#export-bar").get_attribute("value") == "100"
    assert "2" in page.locator("#export-message").inner_text()
    with page.expect_download() as info:
        link.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".xlsx"
    workbook = openpyxl.load_workbook(path, read_only=True)
    data = list(workbook.worksheets[0].iter_rows(values_only=True))
    header, body = data[0], data[1:]
    assert len(body) == 2
    record = header.index("record_id")
    assert {row[record] for row in body} == {ids["ana"], ids["rosa"]}
    assert "Pérez" in {row[header.index("first_surname")] for row in body}
    assert "Femenino" in {row[header.index("sex_label")] for row in body}
    assert len(workbook.sheetnames) >= 2  # the codebook sheet
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    context.close()
