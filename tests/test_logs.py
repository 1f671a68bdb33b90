"""Log files: written by a real server, rotated, and free of personal data; the support bundle too."""

from __future__ import annotations

import logging
import re
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from fieldapp import logs, tls
from fieldapp.cli import main
from fieldapp.storage import db as storage_db
from fieldapp.storage import sync as store
from tests.conftest import csrf_token, valid_intake
from tests.sync.harness import FIELDAPP, child_env, free_port

NAME, SURNAME, DOC, PHONE = "Zyxwaldina", "Quentorrez", "QX918273", "+57 311 918 2736"
MARKERS = [NAME, SURNAME, DOC, "918 2736", "9182736"]
SECRET_KEY, TOKEN = "sk-" + secrets.token_hex(12), "tok-" + secrets.token_hex(12)


def test_the_filter_cuts_query_strings_and_exception_messages(tmp_path):
    path = logs.setup({"LOG_MAX_BYTES": 10_000}, tmp_path, "server")
    log = logging.getLogger("fieldapp.test")
    try:
        log.info("GET /en/records?q=%s&page=2 took 3 ms", NAME)
        try:
            int(DOC)
        except ValueError:
            log.exception("Exception while serving %s", "/en/records?doc=" + DOC)
    finally:
        logs.close()
    text = path.read_text(encoding="utf-8")
    assert "GET /en/records?… took 3 ms" in text
    assert "builtins.ValueError (message not logged)" in text and "int(DOC)" in text
    assert NAME not in text and DOC not in text


def test_log_files_rotate_at_the_configured_size(tmp_path):
    path = logs.setup({"LOG_MAX_BYTES": 2_000, "LOG_BACKUPS": 2}, tmp_path, "commands")
    try:
        for i in range(200):
            logging.getLogger("fieldapp.test").info("line %s of a long enough message", i)
    finally:
        logs.close()
    assert [p.name for p in logs.files({}, tmp_path)] == ["commands.log", "commands.log.1",
                                                          "commands.log.2"]
    assert all(p.stat().st_size <= 2_000 for p in logs.files({}, tmp_path))
    assert path.parent == tmp_path / "logs"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A field instance served by `fieldapp serve` on 127.0.0.1, and the admin's password."""
    instance = tmp_path_factory.mktemp("logs") / "instance"
    password = secrets.token_urlsafe(16)
    done = subprocess.run([str(FIELDAPP), "--instance", str(instance), "init", "--password-stdin"],
                          input=password + "\n", text=True, capture_output=True, env=child_env(), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    config = instance / "fieldapp.toml"
    text = re.sub(r'SECRET_KEY = ".*"', f'SECRET_KEY = "{SECRET_KEY}"', config.read_text())
    config.write_text(text + 'LOG_MAX_BYTES = 200000\n')
    db = storage_db.connect(instance / "fieldapp.db")
    store.set_state(db, token=TOKEN, central_url="https://central.example.org")
    db.close()
    port = free_port()
    out = open(instance / "serve.out", "w", encoding="utf-8")  # noqa: SIM115 — the child's output
    proc = subprocess.Popen([str(FIELDAPP), "--instance", str(instance), "serve", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=child_env())
    out.close()
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(url + "/", timeout=2, allow_redirects=False)
            break
        except requests.ConnectionError:
            assert proc.poll() is None, (instance / "serve.out").read_text()
            time.sleep(0.1)
    try:
        yield url, instance, password, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)


def _users_add(instance: Path, username: str, password: str) -> None:
    done = subprocess.run([str(FIELDAPP), "--instance", str(instance), "users", "add", username, "--role",
                           "officer", "--password-stdin"], input=password + "\n", text=True,
                          capture_output=True, env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr


def test_fieldapp_open_finds_the_running_server(served, tmp_path):
    url, instance, _, proc = served
    port = url.rsplit(":", 1)[1]
    runner = CliRunner()
    done = runner.invoke(main, ["--instance", str(instance), "open", "--print", "--port", port])
    assert done.exit_code == 0 and done.output.strip() == f"http://127.0.0.1:{port}/"


def test_no_personal_data_reaches_the_logs_or_the_support_file(served):
    url, instance, password, proc = served
    _users_add(instance, "officer1", password)
    s = requests.Session()
    # A failed login that names a person, then a real one.
    page = s.get(url + "/en/login", timeout=10)
    s.post(url + f"/en/login?who={NAME}", data={"csrf_token": csrf_token(page.text), "username": NAME,
                                                 "password": DOC}, timeout=10)
    page = s.get(url + "/en/login", timeout=10)
    assert s.post(url + "/en/login", data={"csrf_token": csrf_token(page.text), "username": "officer1",
                                           "password": password}, timeout=10).status_code == 200
    intake = valid_intake(given_names=NAME, first_surname=SURNAME, doc_number=DOC, phone=PHONE)
    form = s.get(url + "/en/intake/new", timeout=10)
    saved = s.post(url + "/en/intake/new", data={"csrf_token": csrf_token(form.text), **intake},
                   timeout=10, allow_redirects=False)
    assert saved.status_code == 302, saved.text[:500]
    bad = valid_intake(given_names=NAME, doc_number=DOC, phone=PHONE, birth_date="2999-01-01")
    assert s.post(url + "/en/intake/new", data={"csrf_token": csrf_token(form.text), **bad},
                  timeout=10).status_code == 422
    assert s.post(url + "/en/intake/new", data={"csrf_token": "forged", **bad}, timeout=10).status_code == 400
    for query in (NAME, DOC):
        found = s.get(url + "/en/records", params={"q": query}, timeout=10)
        assert found.status_code == 200 and NAME in found.text  # the search found the person
    assert s.get(url + "/en/records", params={"q": PHONE}, timeout=10).status_code == 200
    assert s.get(url + f"/en/no-such-page?q={NAME}", timeout=10).status_code == 404
    assert s.get(url + f"/en/records/{intake['uuid']}?name={NAME}", timeout=10).status_code == 200

    bundle = instance / "support.zip"
    done = subprocess.run([str(FIELDAPP), "--instance", str(instance), "doctor", "--bundle", str(bundle)],
                          capture_output=True, text=True, env=child_env(), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # never backed up
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)

    server_log = (instance / "logs" / "server.log").read_text(encoding="utf-8")
    assert f"Serving on http://127.0.0.1:{url.rsplit(':', 1)[1]}" in server_log  # waitress's own line
    assert "fieldapp serve" in server_log
    outputs = {p.name: p.read_bytes() for p in logs.files({}, instance)}
    outputs["serve.out"] = (instance / "serve.out").read_bytes()
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert names == {"diagnostics.json", "config.json", "versions.json", "logs/server.log",
                         "logs/commands.log"}
        outputs |= {f"support.zip:{n}": z.read(n) for n in names}
    assert b"SECRET_KEY" in outputs["support.zip:config.json"]
    assert b"(removed)" in outputs["support.zip:config.json"]
    for where, data in outputs.items():
        text = data.decode("utf-8")
        for secret in [*MARKERS, SECRET_KEY, TOKEN, password]:
            assert secret not in text, f"{secret!r} in {where}"


def _tls_server(instance: Path) -> tuple[int, threading.Thread]:
    files = tls.files(instance)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_once():
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    return port, thread


def test_fieldapp_open_prefers_https_and_warns_when_nothing_answers(served):
    _, instance, _, _ = served
    port, thread = _tls_server(instance)
    done = CliRunner().invoke(main, ["--instance", str(instance), "open", "--print", "--port", str(port)])
    thread.join(10)
    assert done.exit_code == 0 and done.output.strip() == f"https://localhost:{port}/"
    closed = free_port()
    done = CliRunner().invoke(main, ["--instance", str(instance), "open", "--print", "--port", str(closed)])
    assert f"http://127.0.0.1:{closed}/" in done.output and "does not answer" in done.output
