"""Central's side of hop 2: a Flask blueprint that enrols devices and answers push, pull and
finish. Devices authenticate with a bearer token; every refusal is a JSON error with a code."""

from __future__ import annotations

import logging
import uuid as uuidlib
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, Response, current_app, g, has_request_context, request
from flask_babel import lazy_gettext

from fieldapp.domain import persons, privacy
from fieldapp.domain.records import now
from fieldapp.forms import schema
from fieldapp.forms.builder import answers_as_formdata
from fieldapp.forms.validate import validate
from fieldapp.storage import audit, records, subjects
from fieldapp.storage import sync as store
from fieldapp.storage.db import write
from fieldapp.web import clock
from fieldapp.web.access import allow
from fieldapp.web.db import get_db
from fieldapp.web.errors import json_error
from sync import bundle, protocol
from sync.client import SyncError
from sync.protocol import ProtocolError

bp = Blueprint("sync", __name__, url_prefix="/<lang>/sync/v1")
DEFAULT_RETENTION_DAYS = 30
log = logging.getLogger(__name__)

MESSAGES = {
    "no_protocol": lazy_gettext("The request does not say which sync protocol it speaks. Upgrade "
                                "fieldapp on the field server."),
    "upgrade_field": lazy_gettext("This field server's fieldapp is too old for the central server "
                                  "(protocol %(theirs)s, central speaks %(ours)s). Upgrade fieldapp "
                                  "on the field server."),
    "upgrade_central": lazy_gettext("The central server's fieldapp is older than this field server's "
                                    "(protocol %(ours)s, the field server speaks %(theirs)s). Ask the "
                                    "central office to upgrade fieldapp on the central server."),
    "bad_json": lazy_gettext("What was sent is not a JSON object."),
    "bad_gzip": lazy_gettext("What was sent is not complete gzip-compressed data: it was cut short "
                             "or damaged on the way. Sync again."),
    "too_large": lazy_gettext("What was sent is too large once decompressed (at most %(limit)s "
                              "bytes): send smaller batches."),
    "content_type": lazy_gettext("Sync requests must be sent as application/json."),
    "malformed": lazy_gettext("A record in this batch is not shaped as the protocol says."),
    "unknown_fields": lazy_gettext("A record in this batch has fields the protocol does not know: "
                                   "%(fields)s."),
    "missing_fields": lazy_gettext("A record in this batch lacks fields: %(fields)s."),
    "hash_mismatch": lazy_gettext("A record in this batch does not match its content hash: it was "
                                  "damaged or altered on the way."),
    "bad_batch": lazy_gettext("A batch needs a sync id, a batch id and a list of records."),
    "bad_cursor": lazy_gettext("A pull needs a cursor and a limit: whole numbers from 0."),
    "too_many": lazy_gettext("Too many records in one batch: send at most %(limit)s."),
    "unknown_device": lazy_gettext("This device is not enrolled at the central server, or its "
                                   "enrolment was revoked or expired after a long time unused. "
                                   "Ask the central office for a new enrolment code."),
    "bad_code": lazy_gettext("This enrolment code is not valid: it was mistyped, used already, "
                             "revoked or more than 7 days old. Ask the central office for a new one."),
    "wrong_post": lazy_gettext("This enrolment code is for post %(expected)s, but this field server "
                               "is set up for post %(post)s."),
    "not_central": lazy_gettext("This server is not a central server."),
}
RECORD_MESSAGES = {
    "unknown_form": lazy_gettext("The central server does not know this form or form version. "
                                 "Upgrade fieldapp on the central server."),
    "invalid": lazy_gettext("The central server found answers that are not valid: %(fields)s. "
                            "Open the record, correct it and sync again."),
    "uuid_taken": lazy_gettext("Another post's record already has this record's identifier. Tell "
                               "the central office."),
    "unknown_parent": lazy_gettext("The course or session this record belongs to did not reach the "
                                   "central server (it was refused). Correct that one first."),
    "erased": lazy_gettext("This record, or the person it is about, was erased at the central "
                           "office at the person's request: it is not kept. The post erases its "
                           "copy at its next sync."),
    "central_only": lazy_gettext("Only the central office makes this kind of record (a verdict on "
                                 "duplicate persons): a post cannot send one. Tell the central office."),
    "conflict": lazy_gettext("This record was also changed at the central office. Both versions "
                             "are kept there and central staff will choose; the result comes back "
                             "at a later sync."),
    "no_consent": lazy_gettext("This record holds personal data but consent was not given: "
                               "without consent only the anonymous minimum may be kept. Open the "
                               "record, remove the personal data or record the consent, and sync "
                               "again."),
    "merged": lazy_gettext("This record was also changed at the central office, in other "
                           "questions: both changes were combined."),
}


class Refused(Exception):
    def __init__(self, status: int, code: str, **params):
        super().__init__(code)
        self.status, self.code, self.params = status, code, params


def _message(code: str, params: dict) -> str:
    text = MESSAGES.get(code) or RECORD_MESSAGES.get(code) or code
    return str(text) % params if params else str(text)


@bp.errorhandler(Refused)
def refused(e: Refused):
    response, status = json_error(e.status, e.code, _message(e.code, e.params))
    return _stamp(response), status


@bp.before_request
def central_only():
    if current_app.config["MODE"] != "central":
        raise Refused(404, "not_central")
    request.max_content_length = protocol.MAX_BODY  # a batch may exceed the pages' limit
    try:
        g.protocol = protocol.check_version(request.headers.get(protocol.PROTOCOL_HEADER))
    except ProtocolError as e:
        raise Refused(409 if e.code == "upgrade_central" else 426, e.code, **e.params) from e


def _stamp(response: Response) -> Response:
    response.headers[protocol.PROTOCOL_HEADER] = str(protocol.VERSION)
    response.headers["Cache-Control"] = "no-store"
    return response


def _answer(payload: dict) -> Response:
    payload = {"ok": True, "central_time": now(), **payload}
    body = protocol.dump(payload)
    response = Response(body, mimetype="application/json")
    if "gzip" in request.headers.get("Accept-Encoding", "") and len(body) > 1024:
        response.set_data(protocol.encode_raw(body))
        response.headers["Content-Encoding"] = "gzip"
    return _stamp(response)


def _body() -> dict:
    if request.mimetype != "application/json":
        raise Refused(415, "content_type")
    limit = protocol.MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        raise Refused(413, "too_large", limit=limit)
    encoding = request.headers.get("Content-Encoding", "").lower()
    try:
        return protocol.decode(request.get_data(cache=False), gzipped=encoding == "gzip")
    except ProtocolError as e:
        raise Refused(413 if e.code == "too_large" else 400, e.code, **e.params) from e


def _device() -> dict:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.startswith("Bearer ") else ""
    found = store.device_by_token(get_db(), protocol.secret_hash(token), _used_since()) if token else None
    if found is None:
        raise Refused(401, "unknown_device")
    store.contact(get_db(), found["id"], protocol=g.protocol, app_version=request.headers.get(
        protocol.APP_HEADER, ""), clock_offset=_clock_offset())
    return found


def _used_since() -> str:
    """A token unused since before this (DEVICE_TOKEN_IDLE_DAYS ago) no longer works; "": no limit."""
    days = float(current_app.config["DEVICE_TOKEN_IDLE_DAYS"])
    if days <= 0:
        return ""
    return clock.utc(clock.now() - days * 86400).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock_offset() -> float | None:
    """Seconds the device's clock is ahead of ours (negative: behind); None if it did not say."""
    try:
        theirs = datetime.fromisoformat(request.headers.get(protocol.CLOCK_HEADER, "").replace("Z", "+00:00"))
        return round((theirs - datetime.now(UTC)).total_seconds(), 1)
    except (ValueError, TypeError):
        return None


@bp.post("/enrol")
@allow(public=True)
def enrol():
    """Exchange a one-time enrolment code for the device's enrolment. The device made its token
    and sends only its hash and the signing key derived from it: no answer ever carries a token
    (it travels only in the Authorization header of the device's own requests)."""
    body = _body()
    code, post = body.get("code"), body.get("post")
    token_hash, key = body.get("token_hash"), body.get("signing_key")
    if not (isinstance(code, str) and isinstance(post, str) and protocol.is_hex64(token_hash)
            and protocol.is_hex64(key)):
        raise Refused(400, "bad_code")
    db = get_db()
    code_hash = protocol.secret_hash(protocol.normalise_code(code))
    pending = db.execute("SELECT post FROM devices WHERE code_hash = ? AND status = 'pending'",
                         [code_hash]).fetchone()
    if pending and pending[0] != post:
        raise Refused(409, "wrong_post", expected=pending[0], post=post)
    with write(db):
        device = store.enrol(db, code_hash=code_hash, token_hash=token_hash, signing_key=key, at=now(),
                             post=post)
        if device is not None:
            audit.record(db, "device.enrolled", actor=_device_actor(device),
                         target=f"device:{device['id']}", details={"post": device["post"]})
    if device is None:
        raise Refused(401, "bad_code")
    log.info("device %s of post %s enrolled", device["id"], device["post"])
    return _answer({"device": device["id"], "post": device["post"], "name": device["name"],
                    "protocol": protocol.VERSION})


def _device_actor(device: dict) -> audit.Actor:
    address = (request.remote_addr or "") if has_request_context() else ""
    return audit.Actor.device(device["id"], address)


def _counts(results: list[dict]) -> dict[str, int]:
    """How many records of a batch had each outcome: what its event keeps."""
    return {"records": len(results), **outcome_counts(results)}


def outcome_counts(results: list[dict]) -> dict[str, int]:
    """How many results had each outcome, merged ones apart from the other duplicates."""
    counts = {"stored": 0, "duplicate": 0, "conflict": 0, "merged": 0, "rejected": 0}
    for r in results:
        counts["merged" if r.get("code") == "merged" else r["outcome"]] += 1
    return counts


def receipt_details(receipt: dict) -> dict:
    """What an audit event keeps of a receipt: its id, post, counts and digest."""
    return {"receipt": receipt["id"], "post": receipt["post"], "records": receipt["records"],
            **receipt["counts"], "digest": receipt["digest"]}


def register(db, *, post: str, name: str, by: str, replaces: str | None = None) -> tuple[str, str]:
    """Register a device of a post; returns its id and the one-time enrolment code (7 days).

    `replaces`: the id of a device of the same post that this one replaces (a lost, stolen or
    broken laptop), revoked at once (store.ReplaceRefused if it is not a device of that post)."""
    code = protocol.new_code()
    device_id = str(uuidlib.uuid4())
    expires = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.add_device(db, device=device_id, post=post, name=name, by=by, expires=expires,
                     code_hash=protocol.secret_hash(protocol.normalise_code(code)), replaces=replaces)
    return device_id, code


def retention_days(config) -> int:
    """FIELD_RETENTION_DAYS: how long a post keeps personal data after central received it; a pull
    does not send a device the persons older than that (0: no limit)."""
    try:
        return max(0, int(config.get("FIELD_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)))
    except (TypeError, ValueError):
        return DEFAULT_RETENTION_DAYS


def check(raw, post: str, origin: str, today: date, erased: frozenset[str] = frozenset()
          ) -> store.Incoming | dict:
    """A pushed revision, checked: ready to apply, or the rejection to answer (ProtocolError for
    what is not shaped as the protocol says). `erased`: uuids erased here (records and persons)."""
    item = protocol.parse_item(raw)
    if item.form in persons.CENTRAL_FORMS:  # central alone decides which persons are one
        return rejection(item.uuid, item.revision, "central_only")
    if item.uuid in erased or item.person in erased:  # an old copy never brings the data back
        return rejection(item.uuid, item.revision, "erased")
    definition = schema.get(item.form, item.version)
    if definition is None:
        return rejection(item.uuid, item.revision, "unknown_form")
    if privacy.beyond_consent(definition, item.answers):
        # Personal data without consent is refused whole, never stored with parts dropped.
        return rejection(item.uuid, item.revision, "no_consent")
    if not item.deleted:
        result = validate(definition, answers_as_formdata(item.answers), today)
        if not result.ok or result.answers != item.answers:
            fields = sorted(result.errors) or sorted(set(item.answers) ^ set(result.answers)) or ["?"]
            return rejection(item.uuid, item.revision, "invalid", fields=", ".join(fields[:10]))
    sub = records.Submission(
        uuid=item.uuid, definition=definition, answers=item.answers, post=post, device=origin,
        user=item.by, base_revision=item.base, parent=item.parent, person=item.person,
        deleted=item.deleted, at=item.at, origin=origin, data=item.data,
    )
    return store.Incoming(sub, item.hash, item.base_hash)


def rejection(uuid: str, revision: int, code: str, **params) -> dict:
    return {"uuid": uuid, "revision": revision, "outcome": "rejected", "head": 0, "code": code,
            "params": params}


def valid_merge(definition, answers: dict) -> bool:
    today = date.today() + timedelta(days=1)
    result = validate(definition, answers_as_formdata(answers), today)
    return result.ok and result.answers == answers


def apply(db, device: dict, sync_id: str, batch: str, raw_items: list) -> list[dict]:
    """Check and apply one batch of a device; the answer per record, messages in the request's
    language. Raises ProtocolError, before anything is written, for a batch not shaped right."""
    results = store.batch_results(db, device["id"], batch)
    if results is None:
        # A date in the future by the device's clock may be today here: a day of slack.
        today = date.today() + timedelta(days=1)
        erased = frozenset(subjects.erased(db, (
            value for raw in raw_items if isinstance(raw, dict)
            for value in (raw.get("uuid"), raw.get("person")) if isinstance(value, str))))
        items = [check(raw, device["post"], device["id"], today, erased) for raw in raw_items]
        with write(db):  # the batch and its audit event: one transaction, one fsync
            results = store.apply_batch(db, device["id"], batch, sync_id, items, valid_merge)
            # Anchored by the sync's finish: one more fsync per sync, not per batch.
            audit.record(db, "sync.push", actor=_device_actor(device), target=f"device:{device['id']}",
                         details={"post": device["post"], "sync": sync_id[:64], "batch": batch[:128],
                                  **_counts(results)}, anchor=False)
    for r in results:  # in the language of this request, also for a batch answered before
        if "code" in r:
            r["message"] = _message(r["code"], r.get("params", {}))
    return results


def _batch_ids(body: dict) -> tuple[str, str]:
    sync_id, batch = body.get("sync"), body.get("batch")
    if not (isinstance(sync_id, str) and isinstance(batch, str) and 0 < len(sync_id) <= 64
            and 0 < len(batch) <= 128):
        raise Refused(400, "bad_batch")
    return sync_id, batch


@bp.post("/push")
@allow(public=True)
def push():
    device = _device()
    body = _body()
    sync_id, batch = _batch_ids(body)
    items = body.get("records")
    if not isinstance(items, list):
        raise Refused(400, "bad_batch")
    if len(items) > protocol.MAX_BATCH:
        raise Refused(413, "too_many", limit=protocol.MAX_BATCH)
    try:
        results = apply(get_db(), device, sync_id, batch, items)
    except ProtocolError as e:
        raise Refused(400, e.code, **e.params) from e
    return _answer({"batch": batch, "results": results})


@bp.post("/pull")
@allow(public=True)
def pull():
    device = _device()
    body = _body()
    cursor, limit = body.get("cursor", 0), body.get("limit", protocol.DEFAULT_BATCH)
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**62 for v in (cursor, limit)):
        raise Refused(400, "bad_cursor")
    states, accounts, new_cursor, more = store.pull(
        get_db(), post=device["post"], device_id=device["id"], cursor=cursor,
        limit=max(1, min(limit, protocol.MAX_BATCH)), retention_days=retention_days(current_app.config))
    # A pull changes nothing at central: its event is bookkeeping, written without waiting for the
    # disk (nor anchored) — a power cut at that moment may lose it, as it may a device's last contact.
    with write(get_db(), durable=False):
        audit.record(get_db(), "sync.pull", actor=_device_actor(device), target=f"device:{device['id']}",
                     details={"post": device["post"], "records": len(states), "accounts": len(accounts),
                              "cursor": cursor, "to": new_cursor})
    forms = {}
    for (name, version) in schema.definitions():
        forms[name] = max(forms.get(name, 0), version)
    return _answer({"records": states, "accounts": accounts, "cursor": new_cursor, "more": more,
                    "forms": forms})


@bp.post("/finish")
@allow(public=True)
def finish():
    """Close a sync: the receipt of every batch the device names, counted and digested."""
    device = _device()
    body = _body()
    sync_id, batches = body.get("sync"), body.get("batches")
    if not (isinstance(sync_id, str) and 0 < len(sync_id) <= 64 and isinstance(batches, list)
            and all(isinstance(b, str) for b in batches) and len(batches) <= 100_000):
        raise Refused(400, "bad_batch")
    receipt = make_receipt(get_db(), device, sync_id, batches)
    with write(get_db()):
        store.finish(get_db(), device["id"], receipt)
        audit.record(get_db(), "sync.finish", actor=_device_actor(device),
                     target=f"device:{device['id']}", details=receipt_details(receipt))
    return _answer({"receipt": receipt})


def make_receipt(db, device: dict, sync_id: str, batches: list[str]) -> dict:
    results = []
    for batch in dict.fromkeys(batches):
        results.extend(store.batch_results(db, device["id"], batch) or [])
    return receipt_of(results, device=device["id"], post=device["post"], sync_id=sync_id)


def receipt_of(results: list[dict], **about) -> dict:
    return {**about, "id": str(uuidlib.uuid4()), "at": now(), "records": len(results),
            "counts": outcome_counts(results), "digest": protocol.digest(results)}


def import_bundle(db, data: bytes) -> tuple[bytes, dict]:
    """Apply a device's bundle as its online pushes would be; the signed receipt file and the
    receipt. Raises SyncError, having changed nothing, for a file that is not a valid bundle."""
    body, signature, payload = bundle.unpack(data, bundle.BUNDLE)
    device_id = payload.get("device")
    key = store.signing_key(db, device_id) if isinstance(device_id, str) else None
    if key is None:
        raise SyncError("other_device")
    if not protocol.verify(key, body, signature):
        raise SyncError("bad_signature")
    batches = payload.get("batches")
    try:
        if not isinstance(batches, list) or not isinstance(payload.get("id"), str):
            raise ProtocolError("bad_batch")
        for b in batches:
            if not (isinstance(b, dict) and isinstance(b.get("batch"), str)
                    and isinstance(b.get("records"), list)):
                raise ProtocolError("bad_batch")
            for raw in b["records"]:
                protocol.parse_item(raw)
        start, end = int(payload["from"]), int(payload["to"])
    except (ProtocolError, KeyError, TypeError, ValueError) as e:
        raise SyncError("bad_bundle") from e
    device = store.device(db, device_id)
    results = []
    for b in batches:
        results.extend(apply(db, device, payload["id"], b["batch"], b["records"]))
    receipt = receipt_of(results, device=device["id"], post=device["post"], sync_id=payload["id"])
    store.finish(db, device["id"], receipt)
    answer = {"device": device["id"], "bundle": payload["id"], "from": start, "to": end,
              "results": results, "receipt": receipt}
    return bundle.pack(bundle.RECEIPT, answer, key), receipt


def init_app(app) -> None:
    from flask_wtf.csrf import CSRFProtect

    csrf = app.extensions.get("csrf")
    if isinstance(csrf, CSRFProtect):
        csrf.exempt(bp)  # devices authenticate with a token, not a browser cookie
    app.register_blueprint(bp)

