"""The audit log page: administrators browse and filter the events, newest first."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext, lazy_gettext

from fieldapp.domain import audit as rules
from fieldapp.domain.roles import ADMIN
from fieldapp.storage import audit as store
from fieldapp.web.access import allow
from fieldapp.web.db import get_db

bp = Blueprint("audit_log", __name__, url_prefix="/<lang>/admin/audit")

EVENT_LABELS = {
    "auth.login": lazy_gettext("Logged in"),
    "auth.login_failed": lazy_gettext("Login refused"),
    "auth.logout": lazy_gettext("Logged out"),
    "record.viewed": lazy_gettext("Sensitive sections of a record viewed"),
    "record.created": lazy_gettext("Record created"),
    "record.edited": lazy_gettext("Record corrected"),
    "record.deleted": lazy_gettext("Record deleted"),
    "sync.push": lazy_gettext("Batch received from a device"),
    "sync.pull": lazy_gettext("Changes sent to a device"),
    "sync.finish": lazy_gettext("Sync receipt given to a device"),
    "sync.bundle_imported": lazy_gettext("Sync bundle imported"),
    "device.registered": lazy_gettext("Device registered"),
    "device.enrolled": lazy_gettext("Device enrolled"),
    "device.revoked": lazy_gettext("Device revoked"),
    "sync.run": lazy_gettext("Synced with central"),
    "sync.failed": lazy_gettext("Sync with central failed"),
    "sync.enrolled": lazy_gettext("Enrolled at central"),
    "sync.bundle_exported": lazy_gettext("Sync bundle written"),
    "sync.receipt_imported": lazy_gettext("Sync receipt imported"),
    "export.started": lazy_gettext("Export started"),
    "export.downloaded": lazy_gettext("Export downloaded"),
    "person.merged": lazy_gettext("Persons merged"),
    "person.distinct": lazy_gettext("Persons marked as different"),
    "person.unmerged": lazy_gettext("Merge of persons undone"),
    "account.created": lazy_gettext("Account created"),
    "account.updated": lazy_gettext("Account changed"),
    "account.password_reset": lazy_gettext("Password reset"),
    "account.password_changed": lazy_gettext("Own password changed"),
    "auth.login_throttled": lazy_gettext("Login attempts refused for a while"),
    "device.replaced": lazy_gettext("Device replaced by a new one"),
    "backup.made": lazy_gettext("Backup made"),
    "backup.restored": lazy_gettext("Backup restored"),
    "retention.purged": lazy_gettext("Personal data removed after its retention period"),
    "subject.produced": lazy_gettext("Everything held about a person produced"),
    "subject.corrected": lazy_gettext("A person's record corrected at their request"),
    "subject.erased": lazy_gettext("A person's data erased at their request"),
    "subject.erased_at_post": lazy_gettext("Erasure of a person's data applied at the post"),
    "audit.anchored": lazy_gettext("Audit log anchored again"),
}
assert set(EVENT_LABELS) == set(rules.EVENTS)


def _before() -> tuple[int | None, bool]:
    raw = request.args.get("before", "")
    if not raw:
        return None, True
    return (int(raw), True) if raw.isdecimal() and 0 < int(raw) < 2**62 else (None, False)


@bp.get("/")
@allow(ADMIN)
def index():
    flt, errors = rules.parse_filter(request.args)
    before, before_ok = _before()
    if not before_ok:
        errors["before"] = rules.N_("This page of the log does not exist: start again from the "
                                    "newest events.")
    if errors:
        messages = {k: gettext(v) for k, v in errors.items()}
        return render_template("admin/audit.html", flt=flt, errors=messages, rows=[],
                               labels=EVENT_LABELS, next_args=None), 400
    size = current_app.config["PAGE_SIZE"]
    rows = store.page(get_db(), flt, before=before, limit=size + 1)
    next_args = {**flt.as_dict(), "before": rows[size - 1]["seq"]} if len(rows) > size else None
    return render_template("admin/audit.html", flt=flt, errors={}, rows=rows[:size],
                           labels=EVENT_LABELS, next_args=next_args)
