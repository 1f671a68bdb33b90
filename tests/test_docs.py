"""The README's commands and options exist, so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from fieldapp.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
# Code only: fenced blocks and inline `code`, where commands are written to be typed.
CODE = "\n".join(re.findall(r"```sh\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README))
LINES = [m.split("#")[0] for m in re.findall(r"fieldapp [^\n`&]*", CODE)]
COMMANDS = sorted({" ".join(w for w in line.split()[1:] if re.fullmatch(r"[a-z][a-z-]*", w))
                   for line in LINES})


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    command, rest = main, list(words)
    while rest and isinstance(command, click.Group) and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


@pytest.mark.parametrize("line", COMMANDS)
def test_documented_commands_exist(line):
    command, rest = _resolve(line.split())
    assert command is not main or not rest, f"`fieldapp {line}` is not a command"


def test_documented_options_exist():
    for line in LINES:
        words = line.split()[1:]
        command, _ = _resolve([w for w in words if not w.startswith("-")])
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        options |= {o for p in main.params for o in p.opts}
        for word in words:
            flag = word.strip("[]").split("=")[0]
            if flag.startswith("--"):
                assert flag in options, f"{flag} is not an option of `{line}`"


def test_the_readme_has_two_setup_commands():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert blocks[0].strip().startswith("python3 -m venv .venv") and "fieldapp serve" in blocks[0]
    assert blocks[1].strip().startswith("python3 -m venv .venv") and "pytest" in blocks[1]
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].strip() in ci
