"""HTTPS on the post's network: the local CA, the server certificate, a real cheroot server."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fieldapp import tls
from fieldapp.cli import main
from tests.conftest import csrf_token

FIELDAPP = Path(sys.executable).parent / "fieldapp"
STARTUP_WAIT = 20.0


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind).value


# ------------------------------------------------------------------ certificates


def test_ensure_makes_a_local_ca_and_a_server_certificate_it_signed(tmp_path):
    files = tls.ensure(tmp_path, label="POST-A")
    ca, leaf = _load(files.ca_cert), _load(files.cert)

    leaf.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    assert "fieldapp local CA POST-A" in ca.subject.rfc4514_string()
    assert _ext(ca, x509.BasicConstraints).ca and _ext(ca, x509.BasicConstraints).path_length == 0
    assert _ext(ca, x509.KeyUsage).key_cert_sign and _ext(ca, x509.KeyUsage).crl_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= timedelta(days=3650)

    san = _ext(leaf, x509.SubjectAlternativeName)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert ExtendedKeyUsageOID.SERVER_AUTH in _ext(leaf, x509.ExtendedKeyUsage)
    assert not _ext(leaf, x509.BasicConstraints).ca
    assert _ext(leaf, x509.KeyUsage).digital_signature
    assert (_ext(leaf, x509.AuthorityKeyIdentifier).key_identifier
            == _ext(ca, x509.SubjectKeyIdentifier).digest)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= timedelta(days=397)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"

    assert files.fingerprint == ca.fingerprint(hashes.SHA256()).hex(":").upper()
    assert {"localhost", "127.0.0.1"} <= set(files.names)
    if os.name == "posix":
        assert files.ca_key.stat().st_mode & 0o777 == 0o600
        assert files.key.stat().st_mode & 0o777 == 0o600


def test_ensure_is_idempotent(tmp_path):
    first = tls.ensure(tmp_path)
    ca, leaf = first.ca_cert.read_bytes(), first.cert.read_bytes()
    assert tls.ensure(tmp_path) == first
    assert first.ca_cert.read_bytes() == ca and first.cert.read_bytes() == leaf


def test_a_new_address_gets_a_new_server_certificate_from_the_same_ca(tmp_path):
    first = tls.ensure(tmp_path)
    ca, leaf = first.ca_cert.read_bytes(), first.cert.read_bytes()

    moved = tls.ensure(tmp_path, extra=["10.11.12.13", "laptop.example"])
    assert moved.ca_cert.read_bytes() == ca and moved.fingerprint == first.fingerprint
    assert moved.cert.read_bytes() != leaf
    assert {"10.11.12.13", "laptop.example"} <= set(moved.names)
    _load(moved.cert).verify_directly_issued_by(_load(moved.ca_cert))


def test_the_server_certificate_is_renewed_before_it_expires(tmp_path):
    first = tls.ensure(tmp_path)
    ca, leaf = first.ca_cert.read_bytes(), first.cert.read_bytes()
    assert tls.ensure(tmp_path, now=datetime.now(UTC) + timedelta(days=300)).cert.read_bytes() == leaf

    later = tls.ensure(tmp_path, now=datetime.now(UTC) + timedelta(days=370))
    assert later.ca_cert.read_bytes() == ca
    assert later.expires > first.expires + timedelta(days=300)


def test_a_server_certificate_of_another_ca_is_replaced(tmp_path):
    mine, other = tls.ensure(tmp_path / "mine"), tls.ensure(tmp_path / "other")
    for name in ("server.crt", "server.key"):
        (mine.directory / name).write_bytes((other.directory / name).read_bytes())
    tls.ensure(tmp_path / "mine")
    _load(mine.cert).verify_directly_issued_by(_load(mine.ca_cert))


def test_an_incomplete_ca_is_an_error_and_is_never_overwritten(tmp_path):
    files = tls.ensure(tmp_path)
    ca = files.ca_cert.read_bytes()
    files.ca_key.unlink()
    with pytest.raises(tls.TLSError):
        tls.ensure(tmp_path)
    assert files.ca_cert.read_bytes() == ca and not files.ca_key.exists()


def test_init_and_tls_show(tmp_path):
    runner, instance = CliRunner(), str(tmp_path / "inst")
    init = runner.invoke(main, ["--instance", instance, "init", "--password-stdin"],
                         input="a-long-enough-password\n")
    assert init.exit_code == 0, init.output
    ca = tmp_path / "inst" / "tls" / "ca.crt"
    assert str(ca) in init.output
    shown = runner.invoke(main, ["--instance", instance, "tls", "show"])
    assert shown.exit_code == 0, shown.output
    assert str(ca) in shown.output and tls.files(tmp_path / "inst").fingerprint in shown.output
    assert "127.0.0.1" in shown.output and "localhost" in shown.output


def test_the_https_guide_names_real_commands_and_options():
    guide = (Path(__file__).parent.parent / "docs" / "https.md").read_text(encoding="utf-8")
    typed = "\n".join(re.findall(r"```sh\n(.*?)```", guide, re.S) + re.findall(r"`([^`\n]+)`", guide))
    commands = set(re.findall(r"(?m)fieldapp [^\n]*", typed))
    assert "fieldapp serve --https" in commands and "fieldapp tls show" in commands
    for line in commands:
        words = line.split()[1:]
        command = main
        for word in (w for w in words if not w.startswith("-")):
            if not isinstance(command, click.Group) or word not in command.commands:
                break
            command = command.commands[word]
        options = {o for p in command.params + main.params for o in getattr(p, "opts", [])}
        assert command is not main, line
        assert {w for w in words if w.startswith("--")} <= options, line


# ------------------------------------------------------------------ the connect page


def test_connect_page_for_supervisors_and_admins(app, client_as):
    files = tls.ensure(app.instance_path)
    for who in ("admin", "supervisor"):
        page = client_as(who).get("/en/connect")
        assert page.status_code == 200
        assert files.fingerprint in page.text and "Certificate Trust Settings" in page.text
        # served over plain HTTP here: the page says how to start HTTPS
        assert "not served over HTTPS" in page.text and "fieldapp serve --https" in page.text
        # the CSP allows no inline styles or scripts (a JSON data block is not run)
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert " style=" not in page.text
        assert all(" src=" in s or 'type="application/json"' in s for s in scripts), scripts


def test_connect_page_over_https_shows_qr_codes_for_the_laptops_address(app, client_as):
    tls.ensure(app.instance_path, extra=["192.168.77.5"])
    admin = client_as()
    base = "https://192.168.77.5:8443"
    page = admin.http.get("/en/login", base_url=base)
    admin.http.post("/en/login", base_url=base, data={
        "csrf_token": csrf_token(page.text), "username": "admin", "password": "correct-horse-battery"})
    page = admin.http.get("/en/connect", base_url=base)
    assert page.status_code == 200
    assert page.text.count('<svg viewBox=') == 2
    assert 'href="https://192.168.77.5:8443/ca.crt"' in page.text
    assert 'href="https://192.168.77.5:8443/"' in page.text
    assert "not served over HTTPS" not in page.text


def test_connect_page_in_spanish(app, client_as):
    files = tls.ensure(app.instance_path)
    page = client_as("admin").get("/es/connect")
    assert page.status_code == 200
    assert 'lang="es"' in page.text and "Inicio" in page.text and files.fingerprint in page.text


def test_connect_page_without_certificates_says_how_to_make_them(client_as):
    page = client_as("admin").get("/en/connect")
    assert page.status_code == 200 and "fieldapp serve --https" in page.text


@pytest.mark.parametrize("who", ["officer", "central"])
def test_connect_page_is_refused_to_other_roles(client_as, who):
    assert client_as(who).get("/en/connect").status_code == 403


def test_home_links_to_the_connect_page_for_those_who_may_use_it(client_as):
    assert "/en/connect" in client_as("supervisor").get("/en/").text
    assert "/en/connect" not in client_as("officer").get("/en/").text


def test_ca_download_is_public_and_404_without_a_ca(app, client_as):
    missing = client_as().get("/ca.crt")
    assert missing.status_code == 404 and "Page not found" in missing.text
    files = tls.ensure(app.instance_path)
    response = client_as().get("/ca.crt")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert "fieldapp-ca.crt" in response.headers["Content-Disposition"]
    assert x509.load_der_x509_certificate(response.data) == _load(files.ca_cert)


# ------------------------------------------------------------------ a real HTTPS server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    env["FIELDAPP_LANG"] = "en"
    return env


def _start(instance: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    log = open(instance / f"serve-{port}.log", "w", encoding="utf-8")  # noqa: SIM115 — child's output
    proc = subprocess.Popen(
        [str(FIELDAPP), "--instance", str(instance), "serve", "--https", "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=_env())
    log.close()
    deadline = time.monotonic() + STARTUP_WAIT
    while True:
        try:
            requests.get(url + "/", verify=instance / "tls" / "ca.crt", timeout=2,
                         allow_redirects=False)
            return proc, url
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop(proc)
                raise RuntimeError("fieldapp serve --https did not start:\n"
                                   + (instance / f"serve-{port}.log").read_text()) from None
            time.sleep(0.2)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("https") / "instance"
    password = secrets.token_urlsafe(16)
    done = subprocess.run([str(FIELDAPP), "--instance", str(instance), "init", "--password-stdin"],
                          input=password + "\n", text=True, capture_output=True, env=_env(),
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(instance / "tls" / "ca.crt") in done.stdout
    proc, url = _start(instance)
    try:
        yield url, instance, password
    finally:
        _stop(proc)


def test_the_server_speaks_https_with_the_instances_certificate(https_server):
    url, instance, _ = https_server
    response = requests.get(url + "/en/login", verify=instance / "tls" / "ca.crt", timeout=10)
    assert response.status_code == 200 and "csrf_token" in response.text
    assert "secure" in response.headers["Set-Cookie"].lower()  # the session cookie stays on HTTPS


def test_the_server_is_not_trusted_without_the_local_ca(https_server):
    url, _, _ = https_server
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/en/login", timeout=10)


def test_the_server_hands_out_its_ca(https_server):
    url, instance, _ = https_server
    response = requests.get(url + "/ca.crt", verify=instance / "tls" / "ca.crt", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(response.content) == _load(instance / "tls" / "ca.crt")


def test_an_admin_opens_the_connect_page_over_https(https_server):
    url, instance, password = https_server
    http, ca = requests.Session(), instance / "tls" / "ca.crt"  # Session.verify loses to $REQUESTS_CA_BUNDLE
    login = http.get(url + "/en/login", verify=ca, timeout=10)
    form = {"csrf_token": csrf_token(login.text), "username": "admin", "password": password}
    # A form must come from this site, as the browser's Sec-Fetch-Site or Origin says; pages send
    # no Referer (Referrer-Policy: no-referrer), so none is needed.
    for elsewhere in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        refused = http.post(url + "/en/login", data=form, verify=ca, timeout=10, headers=elsewhere)
        assert refused.status_code == 400
    logged_in = http.post(url + "/en/login", data=form, verify=ca, timeout=10, allow_redirects=False,
                          headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"})
    assert logged_in.status_code == 302
    assert logged_in.headers["Referrer-Policy"] == "no-referrer"
    assert logged_in.headers["Strict-Transport-Security"].startswith("max-age=")
    page = http.get(url + "/en/connect", verify=ca, timeout=10)
    assert page.status_code == 200 and page.url == url + "/en/connect"
    assert tls.files(instance).fingerprint in page.text
    assert "not served over HTTPS" not in page.text


@pytest.mark.skipif(os.name != "posix", reason="Ctrl-C is a console event on Windows")
def test_ctrl_c_stops_the_server_cleanly(https_server):
    _, instance, _ = https_server
    proc, url = _start(instance)
    assert _stop(proc, signal.SIGINT) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", verify=instance / "tls" / "ca.crt", timeout=2)
