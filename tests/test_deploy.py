"""The service set-ups in deploy/: they start a real `fieldapp serve` with options that exist."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest

from fieldapp.cli import main

DEPLOY = Path(__file__).parent.parent / "deploy"
UNIT = DEPLOY / "fieldapp.service"
WINDOWS = DEPLOY / "windows" / "fieldapp-service.ps1"


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _parse(args: list[str]) -> tuple[click.Context, click.Context]:
    """Parse a fieldapp command line as the `fieldapp` command would; unknown options raise."""
    ctx = main.make_context("fieldapp", list(args), resilient_parsing=False)
    with warnings.catch_warnings():  # Click 8.2 deprecates protected_args, where 8.1 puts "serve"
        warnings.simplefilter("ignore", DeprecationWarning)
        name, command, rest = main.resolve_command(ctx, [*ctx.protected_args, *ctx.args])
    return ctx, command.make_context(name, rest, parent=ctx)


def test_the_unit_starts_fieldapp_serve_with_its_instance():
    unit = _directives(UNIT.read_text(encoding="utf-8"))
    executable, *args = shlex.split(unit["ExecStart"][0])
    assert Path(executable).name == "fieldapp"
    top, serve = _parse(args)
    assert serve.command.name == "serve" and serve.params["use_https"] is True
    assert top.params["instance"] == unit["WorkingDirectory"][0] == "/var/lib/fieldapp"
    assert unit["StateDirectory"] == ["fieldapp"]  # systemd makes /var/lib/fieldapp, owned by User


@pytest.mark.parametrize(("key", "value"), [
    ("User", "fieldapp"), ("Restart", "on-failure"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
    ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("WantedBy", "multi-user.target"),
])
def test_the_unit_runs_unprivileged_hardened_and_restarts(key, value):
    assert _directives(UNIT.read_text(encoding="utf-8"))[key] == [value]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None and not os.environ.get("CI"),
                    reason="systemd-analyze is not installed (in CI it must be: the test fails)")
def test_systemd_accepts_the_unit(tmp_path):
    # Point it at this checkout's fieldapp and an account that exists here; the rest as shipped.
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/fieldapp/bin/fieldapp", str(Path(sys.executable).with_name("fieldapp")))
    text = re.sub(r"^(User|Group)=fieldapp$", r"\1=root", text, flags=re.M)
    copy = tmp_path / "fieldapp.service"
    copy.write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert str(copy) not in done.stderr, done.stderr  # no unknown key or bad value in the unit


def _powershell_calls(text: str) -> list[list[str]]:
    """The fieldapp command lines the Windows script runs, with sample values for its variables."""
    values = {"$Instance": r"C:\fieldapp\instance", "$Port": "8443"}
    lines = re.findall(r"^\s*& \$Fieldapp (.+)$", text, re.M)
    lines += re.findall(r'^\$link\.Arguments = "(.+)"$', text, re.M)
    calls = []
    for line in lines:
        line = line.replace('`"', "")
        for name, value in values.items():
            line = line.replace(name, value)
        calls.append(line.split())
    return calls


def test_the_windows_script_runs_real_commands_and_options():
    text = WINDOWS.read_text(encoding="utf-8")
    calls = _powershell_calls(text)
    assert len(calls) == 2
    names = set()
    for args in calls:
        top, command = _parse(args)
        assert top.params["instance"] == r"C:\fieldapp\instance" and command.params["port"] == 8443
        names.add(command.command.name)
    assert names == {"serve", "open"}
    assert "--https" in calls[0]
    params = re.search(r"param\((.*?)\n\)", text, re.S).group(1)
    for option in re.findall(r"fieldapp-service\.ps1((?:\s+`?\s*-\w+(?: \S+)?)+)", text):
        for name in re.findall(r"-(\w+)", option):
            if name not in ("ExecutionPolicy", "File"):
                assert f"${name}" in params, f"-{name} is not a parameter of the script"
