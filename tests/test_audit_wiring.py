"""The audit events of features built beside the audit log: throttled logins, retention purges,
and backups restored (after which the chain still verifies)."""

from __future__ import annotations

from fieldapp import retention
from tests.conftest import Client
from tests.sync.harness import run_cli
from tests.test_audit_events import events, last
from tests.test_retention import _at, field  # noqa: F401 — the fixture

PASSPHRASE = "a long enough passphrase"


def test_throttled_logins_are_recorded(app):
    client = Client(app, None)
    statuses = [client.login("officer", "wrong password").status_code for _ in range(6)]
    assert statuses[-1] == 429, statuses
    throttled = last(app, "auth.login_throttled")
    assert throttled["actor_kind"] == "anonymous" and throttled["details"]["retry_after"] > 0
    assert "wrong password" not in str(events(app))


def test_a_retention_purge_is_recorded_with_counts_only(app, db, field):  # noqa: F811 — fixtures
    retention.run(db, app.config, _at(31))
    purged = last(app, "retention.purged")
    assert purged["target_id"] == "field" and purged["details"]["records"] == 3
    assert purged["details"]["forms"] == {"intake": 1, "participant": 1, "attendance": 1}
    assert field["intake"] not in str(purged)


def test_after_a_restore_the_audit_chain_still_verifies(tmp_path):
    instance, usb = tmp_path / "post", tmp_path / "usb"
    usb.mkdir()
    run_cli(instance, "init", "--post", "POST-A", "--password-stdin", stdin="correct-horse-battery\n")
    run_cli(instance, "backup", "--to", str(usb), "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    run_cli(instance, "users", "add", "ana", "--role", "officer", "--password-stdin",
            stdin="another long password\n")  # an event the backup does not hold
    [backup] = usb.iterdir()
    run_cli(instance, "restore", str(backup), "--passphrase-stdin", stdin=PASSPHRASE + "\n")
    verified = run_cli(instance, "audit", "verify", check=False)
    assert verified.returncode == 0 and verified.stdout.startswith("ok"), verified.stdout + verified.stderr
    listed = run_cli(instance, "audit", "list").stdout
    assert "backup.restored" in listed and "audit.anchored" in listed
    assert "backup.made" not in listed  # recorded after the copy: in the database it replaced
