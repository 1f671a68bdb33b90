"""The sync docs match the code: every route, every error code, the version, the item keys, the
enrol exchange and the bounds of the protocol (docs/sync-protocol.md, docs/sync-openapi.json); every
`fieldapp sync` and `fieldapp devices` command and every sync setting (docs/sync.md, the guide).

PyYAML is not a dependency, so the OpenAPI description is JSON (docs/sync-openapi.json).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from fieldapp import config, create_app
from fieldapp.cli import main
from fieldapp.domain.records import revision_hash
from fieldapp.storage import db as storage_db
from fieldapp.storage import migrations
from sync import messages, protocol, server

DOCS = Path(__file__).parent.parent / "docs"
PROSE = (DOCS / "sync-protocol.md").read_text(encoding="utf-8")
GUIDE = (DOCS / "sync.md").read_text(encoding="utf-8")
OPENAPI_TEXT = (DOCS / "sync-openapi.json").read_text(encoding="utf-8")
CENTRAL_CODES = sorted({*server.MESSAGES, *server.RECORD_MESSAGES})


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(OPENAPI_TEXT)


@pytest.fixture(scope="module")
def sync_routes(tmp_path_factory) -> dict[str, set[str]]:
    """OpenAPI path -> methods, for every route of the `sync` blueprint."""
    tmp = tmp_path_factory.mktemp("sync-docs")
    app = create_app({"SECRET_KEY": "test-secret", "DATABASE": str(tmp / "fieldapp.db"),
                      "MODE": "central", "TESTING": True}, instance=tmp)
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("sync."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    assert routes, "the sync blueprint has no routes: was it renamed?"
    return routes


def test_the_openapi_file_parses_as_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    assert spec["paths"]


def test_every_sync_route_is_in_the_openapi_file_with_its_methods(spec, sync_routes):
    for path, methods in sync_routes.items():
        assert path in spec["paths"], f"{path} is a sync route the OpenAPI file does not describe"
        documented = set(spec["paths"][path]) - {"parameters", "summary", "description"}
        assert methods == documented, f"{path}: routes answer {methods}, the docs say {documented}"


def test_the_openapi_file_describes_no_route_that_does_not_exist(spec, sync_routes):
    assert set(spec["paths"]) <= set(sync_routes)


def test_every_sync_route_is_in_the_prose(sync_routes):
    for path in sync_routes:
        assert path.replace("{lang}", "<lang>") in PROSE, f"{path} is missing from sync-protocol.md"


@pytest.mark.parametrize("code", CENTRAL_CODES)
def test_every_error_code_is_documented_in_both_files(code):
    assert f"`{code}`" in PROSE, f"error code {code} is missing from sync-protocol.md"
    assert f'"{code}"' in OPENAPI_TEXT, f"error code {code} is missing from sync-openapi.json"


@pytest.mark.parametrize("code", sorted(messages.ERRORS))
def test_every_field_side_code_is_in_the_prose(code):
    assert f"`{code}`" in PROSE, f"field-side code {code} is missing from sync-protocol.md"


def test_the_documented_protocol_version_is_the_code_s(spec):
    stated = re.search(r"^Protocol version: \*\*(\d+)\*\* \(the oldest a central server still "
                       r"accepts: \*\*(\d+)\*\*\)", PROSE, re.M)
    assert stated, "sync-protocol.md does not state the protocol version"
    assert (int(stated[1]), int(stated[2])) == (protocol.VERSION, protocol.MIN_VERSION)
    assert spec["info"]["x-fieldapp-protocol"] == protocol.VERSION
    assert spec["info"]["x-fieldapp-min-protocol"] == protocol.MIN_VERSION
    assert spec["info"]["version"] == str(protocol.VERSION)
    assert f"fieldapp-bundle {protocol.VERSION} <signature>" in PROSE


def test_the_documented_item_is_the_protocol_s(spec):
    item = spec["components"]["schemas"]["Item"]
    assert set(item["properties"]) == protocol.ITEM_KEYS
    assert set(item["required"]) == protocol.ITEM_KEYS
    assert item["additionalProperties"] is False
    for key in protocol.ITEM_KEYS:
        assert f"| `{key}` |" in PROSE, f"item key {key} is missing from the prose's table"


def test_the_documented_limits_are_the_protocol_s(spec):
    push = spec["components"]["schemas"]["PushRequest"]["properties"]["records"]
    assert push["maxItems"] == protocol.MAX_BATCH
    pull = spec["components"]["schemas"]["PullRequest"]["properties"]["limit"]
    assert pull["default"] == protocol.DEFAULT_BATCH
    assert f"{protocol.MAX_BODY // 2**20} MiB (`MAX_BODY`)" in PROSE
    assert f"at most {protocol.MAX_BATCH} (`MAX_BATCH`)" in PROSE
    assert f"`CLOCK_WARNING_SECONDS = {protocol.CLOCK_WARNING_SECONDS}`" in PROSE


def test_every_reference_in_the_openapi_file_resolves(spec):
    refs = re.findall(r'"\$ref": "#/([^"]+)"', OPENAPI_TEXT)
    assert refs
    for ref in set(refs):
        node = spec
        for part in ref.split("/"):
            assert part in node, f"#/{ref} does not resolve"
            node = node[part]


# The exchanges the OpenAPI file describes, against a central app ------------------------------


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """A central app with a migrated database: (test client, database)."""
    tmp = tmp_path_factory.mktemp("sync-docs-central")
    app = create_app({"SECRET_KEY": "test-secret", "DATABASE": str(tmp / "fieldapp.db"),
                      "MODE": "central", "TESTING": True}, instance=tmp)
    db = storage_db.connect(app.config["DATABASE"])
    migrations.apply(db)
    yield app.test_client(), db
    db.close()


HEADERS = {protocol.PROTOCOL_HEADER: str(protocol.VERSION)}


def _enrolled(central) -> dict:
    """Headers of a freshly enrolled device."""
    http, db = central
    code = server.register(db, post="POST-1", name="laptop", by="test")[1]
    token = protocol.new_token()
    response = http.post("/en/sync/v1/enrol", headers=HEADERS, json={
        "code": code, "post": "POST-1", "token_hash": protocol.secret_hash(token),
        "signing_key": protocol.signing_key(token)})
    assert response.status_code == 200, response.get_json()
    return {**HEADERS, "Authorization": f"Bearer {token}"}


def _answer_keys(spec, name: str) -> tuple[set, set]:
    """(every property, the required ones) of an answer schema built on `Answer`."""
    schemas = spec["components"]["schemas"]
    parts = [schemas["Answer"], *(s for s in schemas[name]["allOf"] if "$ref" not in s)]
    return ({k for s in parts for k in s["properties"]}, {k for s in parts for k in s["required"]})


def test_the_documented_enrol_exchange_is_the_server_s(spec, central):
    http, db = central
    request = spec["components"]["schemas"]["EnrolRequest"]
    assert set(request["required"]) == set(request["properties"])
    code = server.register(db, post="POST-1", name="laptop", by="test")[1]
    token = protocol.new_token()
    body = {"code": code, "post": "POST-1", "token_hash": protocol.secret_hash(token),
            "signing_key": protocol.signing_key(token)}
    assert set(body) == set(request["properties"]), "the documented enrol request is not the client's"
    for key in body:  # every documented key is required
        response = http.post("/en/sync/v1/enrol", headers=HEADERS,
                             json={k: v for k, v in body.items() if k != key})
        assert (response.status_code, response.get_json()["error"]["code"]) == (400, "bad_code"), key
    first = http.post("/en/sync/v1/enrol", headers=HEADERS, json=body)
    assert first.status_code == 200
    documented, required = _answer_keys(spec, "EnrolAnswer")
    assert required <= set(first.get_json()) <= documented
    assert "token" not in first.get_json(), "the device makes its token: central never sends one"
    again = http.post("/en/sync/v1/enrol", headers=HEADERS, json=body)
    assert again.status_code == 200 and again.get_json()["device"] == first.get_json()["device"]
    other = protocol.new_token()
    stolen = http.post("/en/sync/v1/enrol", headers=HEADERS, json={
        **body, "token_hash": protocol.secret_hash(other), "signing_key": protocol.signing_key(other)})
    assert (stolen.status_code, stolen.get_json()["error"]["code"]) == (401, "bad_code")
    assert "**Enrol is idempotent.**" in PROSE


def test_the_documented_pull_bounds_are_the_server_s(spec, central):
    headers = _enrolled(central)
    request = spec["components"]["schemas"]["PullRequest"]["properties"]
    for key in ("cursor", "limit"):
        top = request[key]["maximum"]
        for value, status in ((top, 200), (top + 1, 400), (request[key]["minimum"] - 1, 400)):
            response = central[0].post("/en/sync/v1/pull", headers=headers, json={key: value})
            assert response.status_code == status, (key, value, response.get_json())
    documented, required = _answer_keys(spec, "PullAnswer")
    answer = central[0].post("/en/sync/v1/pull", headers=headers, json={}).get_json()
    assert required <= set(answer) <= documented
    assert "0 ≤ n < 2⁶²" in PROSE and top + 1 == 2**62


def test_the_documented_finish_bounds_are_the_server_s(spec, central):
    headers = _enrolled(central)
    sync_id = spec["components"]["schemas"]["FinishRequest"]["properties"]["sync"]
    for length, status in ((sync_id["maxLength"], 200), (sync_id["maxLength"] + 1, 400),
                           (sync_id["minLength"] - 1, 400)):
        response = central[0].post("/en/sync/v1/finish", headers=headers,
                                   json={"sync": "s" * length, "batches": []})
        assert response.status_code == status, (length, response.get_json())
    receipt = spec["components"]["schemas"]["Receipt"]
    answer = central[0].post("/en/sync/v1/finish", headers=headers,
                             json={"sync": "s", "batches": []}).get_json()
    assert set(receipt["required"]) <= set(answer["receipt"]) <= set(receipt["properties"])


def test_the_documented_push_results_are_the_server_s(spec, central):
    headers = _enrolled(central)
    answers = {"notes": "only notes"}  # not a valid intake: rejected, with params and a message
    item = {"uuid": "0b1e6f2a-4c1d-4e9b-9a53-2f1c8e7d6a10", "form": "intake", "v": 1, "base": 0,
            "base_hash": "", "hash": revision_hash(answers), "deleted": False,
            "answers": answers, "parent": "", "person": "", "by": "officer1",
            "at": "2026-11-20T15:42:10.000000Z"}
    assert set(item) == protocol.ITEM_KEYS
    body = {"sync": "s", "batch": "0-1-docs", "records": [item]}
    documented = spec["components"]["schemas"]["Result"]
    messages_by_lang = {}
    for lang in ("en", "es"):  # a kept answer too comes in the language of the request
        answer = central[0].post(f"/{lang}/sync/v1/push", headers=headers, json=body).get_json()
        (result,) = answer["results"]
        assert set(documented["required"]) <= set(result) <= set(documented["properties"])
        assert result["outcome"] == "rejected" and result["code"] == "invalid" and "params" in result
        messages_by_lang[lang] = result["message"]
    assert messages_by_lang["en"] != messages_by_lang["es"]
    assert "| `params` |" in PROSE


# The guide for operators and supervisors: docs/sync.md ----------------------------------------


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    """(words after `fieldapp`, command) for every command under `group`."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


SYNC_COMMANDS = sorted(words for words, _ in _commands(main) if words[0] in ("sync", "devices"))


def test_there_are_sync_and_devices_commands_to_document():
    assert ("sync",) in SYNC_COMMANDS and ("devices",) in SYNC_COMMANDS
    assert len(SYNC_COMMANDS) > 5


@pytest.mark.parametrize("words", SYNC_COMMANDS, ids=" ".join)
def test_every_sync_and_devices_command_is_in_the_guide(words):
    line = "fieldapp " + " ".join(words)
    assert f"`{line}" in GUIDE, f"`{line}` is missing from docs/sync.md"


def test_the_guide_s_commands_and_options_exist():
    commands = dict(_commands(main))
    written = re.findall(r"fieldapp ((?:sync|devices)\b[^`\n]*)", GUIDE)
    assert written
    for line in written:
        words = [w.strip("[]") for w in line.split()]
        names = tuple(w for w in words if re.fullmatch(r"[a-z][a-z-]*", w))
        while names and names not in commands:
            names = names[:-1]  # arguments: FILE, POST-1, a URL
        assert names, f"`fieldapp {line}` is not a command"
        chain = [commands[names[:i]] for i in range(1, len(names) + 1)]
        options = {o for c in chain for p in c.params for o in getattr(p, "opts", [])}
        for flag in (w for w in words if w.startswith("--")):
            assert flag in options, f"{flag} is not an option of `fieldapp {' '.join(names)}`"


@pytest.mark.parametrize("key", sorted(k for k in config.DEFAULTS if k.startswith("SYNC_")))
def test_every_sync_setting_is_in_the_guide_s_table_with_its_default(key):
    row = re.search(rf"^\| `{key}` \| ([^|]+) \|", GUIDE, re.M)
    assert row, f"{key} is missing from the settings table of docs/sync.md"
    default = config.DEFAULTS[key]
    if default == "":
        assert row[1].strip() == "empty"
    else:
        assert row[1].strip().startswith(f"`{default}`"), f"{key}: the guide says {row[1]}, not {default}"


def test_the_guide_links_the_protocol():
    assert "(sync-protocol.md)" in GUIDE
    assert "`SYNC_CA_BUNDLE`" in GUIDE


def _stop_table() -> list[str]:
    """The first column of the guide's table of messages that stop a sync."""
    section = GUIDE.split("## 10. When a sync stops", 1)[1].split("\n## ", 1)[0]
    return [cell.strip() for cell in re.findall(r"^\| ([^|]+) \|", section, re.M)][1:]  # no header


def test_the_guide_quotes_the_messages_that_stop_a_sync_as_they_are():
    pages = (Path(__file__).parent.parent / "fieldapp" / "web" / "syncing.py").read_text(encoding="utf-8")
    known = " ".join([*map(str, messages.ERRORS.values()), *map(str, server.MESSAGES.values()), pages])
    known = known.lower()
    rows = _stop_table()
    assert rows, "docs/sync.md has no table of the messages that stop a sync"
    for row in rows:
        assert row.lower() in known, f"docs/sync.md quotes a message the code does not have: {row!r}"
    for code in ("not_enrolled", "unreachable", "tls", "server", "busy", "newer_forms"):
        assert any(row.lower() in str(messages.ERRORS[code]).lower() for row in rows), \
            f"docs/sync.md does not say what to do about {code}"
    for code in ("unknown_device", "upgrade_field", "upgrade_central"):
        assert any(row.lower() in str(server.MESSAGES[code]).lower() for row in rows), \
            f"docs/sync.md does not say what to do about {code}"
