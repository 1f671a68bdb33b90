"""A real fieldapp server and Debian's Chromium for the browser tests.

The helpers at the top (`chromium_or_skip`, `launch_chromium`, `running_server`) are plain
functions so that docs/screenshots.py can use them too; the fixtures below wrap them.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
FIELDAPP = Path(sys.executable).parent / "fieldapp"
STARTUP_WAIT = 20.0  # seconds the server gets to answer its first request
OFFICER = "officer1"
SUPERVISOR = "supervisor1"

PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 1,
         "is_mobile": True, "has_touch": True}
LAPTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    instance: Path
    officer: str
    password: str


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium is missing: {CHROMIUM} not found (install Debian's `chromium` package)"
    return None


def chromium_or_skip() -> None:
    """Skip when Chromium is missing, but fail in CI (CI=true), where it must be installed."""
    reason = chromium_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so the browser tests may not be skipped.", pytrace=False)
    pytest.skip(reason)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child_env() -> dict:
    """The environment without FIELDAPP_* settings that could override the test instance."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    env["FIELDAPP_LANG"] = "en"  # command output in English, whatever the terminal's locale
    return env


def _run(instance: Path, *args: str, stdin: str) -> None:
    done = subprocess.run(
        [str(FIELDAPP), "--instance", str(instance), *args], input=stdin, text=True,
        capture_output=True, env=_child_env(), timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`fieldapp {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class FieldServer:
    """A field server's instance, with an officer, that a test can stop, kill and start again
    on the same address: `field = FieldServer(tmp); field.start(); ...; field.stop()`."""

    def __init__(self, instance: Path):
        if not FIELDAPP.exists():
            raise RuntimeError(f"{FIELDAPP} not found: run `pip install -e \".[test]\"` in the venv")
        admin_password, password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        _run(instance, "init", "--post", "POST-1", "--password-stdin", stdin=admin_password + "\n")
        _run(instance, "users", "add", OFFICER, "--role", "officer", "--password-stdin",
             stdin=password + "\n")
        self.server = Server(url=f"http://127.0.0.1:{_free_port()}", instance=instance,
                             officer=OFFICER, password=password)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        if self.proc is not None and self.proc.poll() is None:
            return self.server
        url, port = self.server.url, self.server.url.rsplit(":", 1)[1]
        log_path = self.server.instance / "serve.log"
        with open(log_path, "a", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [str(FIELDAPP), "--instance", str(self.server.instance), "serve", "--host",
                 "127.0.0.1", "--port", port],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_child_env(),
            )
        deadline = time.monotonic() + STARTUP_WAIT
        while not _answers(url + "/"):
            if self.proc.poll() is not None:
                raise RuntimeError(f"fieldapp serve exited with {self.proc.returncode}:\n"
                                   + log_path.read_text(encoding="utf-8"))
            if time.monotonic() > deadline:
                raise RuntimeError(f"fieldapp serve did not answer at {url} within "
                                   f"{STARTUP_WAIT:.0f} s:\n" + log_path.read_text(encoding="utf-8"))
            time.sleep(0.2)
        return self.server

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def kill(self) -> None:
        """As a power cut would: no chance to finish what it was doing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def running_server(instance: Path) -> Iterator[Server]:
    """Set up an instance in `instance` (a new folder) with an officer, serve it, stop it after."""
    field = FieldServer(instance)
    try:
        yield field.start()
    finally:
        field.stop()


def log_in(page, server: Server, lang: str = "en") -> None:
    """From the language-less root, through the redirect to the login page, to the home page.

    `lang` is the language the browser's locale should pick (the context's Accept-Language).
    """
    log_in_as(page, server, server.officer, server.password, lang)


def log_in_as(page, server: Server, username: str, password: str, lang: str = "en") -> None:
    """`log_in` with any account of the server's instance (see `add_user`)."""
    from playwright.sync_api import expect

    page.goto(server.url + "/")
    expect(page).to_have_url(
        re.compile(re.escape(f"{server.url}/{lang}/login?next=") + f"(/|%2F){lang}(/|%2F)$"))
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("main button[type=submit]").click()
    expect(page).to_have_url(f"{server.url}/{lang}/")
    expect(page.locator("nav.menu")).to_contain_text(username)


def add_user(server: Server, username: str, role: str) -> str:
    """Add an account of `role` at the instance's post with the `fieldapp` CLI; its password."""
    password = secrets.token_urlsafe(16)
    _run(server.instance, "users", "add", username, "--role", role, "--password-stdin",
         stdin=password + "\n")
    return password


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    chromium_or_skip()  # no server to start for tests that cannot run
    try:
        with running_server(tmp_path_factory.mktemp("instance")) as running:
            yield running
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def supervisor(server) -> tuple[str, str]:
    """(username, password) of a supervisor at the server's post, added once per run."""
    try:
        return SUPERVISOR, add_user(server, SUPERVISOR, "supervisor")
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def playwright_session():
    """The one Playwright driver of the run (a second one cannot run beside it)."""
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_session):
    launched = launch_chromium(playwright_session)
    yield launched
    launched.close()


def watch_csp(page) -> list[str]:
    """What the page's Content-Security-Policy refuses, as Chromium reports it on the console."""
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    return refused


@pytest.fixture
def make_page(browser):
    """`make_page(PHONE)`: a page in a fresh context (no cookies), closed after the test, which
    fails if the page's CSP refused anything (an inline script or style, a foreign source)."""
    contexts, refused = [], []

    def make(device: dict, locale: str = "en-US"):
        context = browser.new_context(locale=locale, **device)
        contexts.append(context)
        page = context.new_page()
        refused.append(watch_csp(page))
        return page

    yield make
    for context in contexts:
        context.close()
    violations = [text for page in refused for text in page]
    assert not violations, f"the Content-Security-Policy refused: {violations}"
