"""Sync by file, for posts with no internet: the field server writes its pending changes to a signed,
compressed bundle; central imports it with the same per-record outcomes as an online push and
gives back a signed receipt, which the field server imports to advance its checkpoint.

A file is gzip-compressed text: a first line `fieldapp-bundle 1 <signature>` (or
`fieldapp-receipt`), then the JSON payload the signature covers (HMAC-SHA256 with a key derived
from the device token: only the device and central can make or check one).
"""

from __future__ import annotations

import json
import uuid as uuidlib
import zlib

from sqlite_utils import Database

from fieldapp.domain.records import now
from fieldapp.storage import sync as store
from sync import protocol
from sync.client import SyncError, batch_id

BUNDLE, RECEIPT = "fieldapp-bundle", "fieldapp-receipt"
MAX_UNPACKED = 1024 * 1024 * 1024  # a bundle of every record a post could hold, and some


def pack(kind: str, payload: dict, key: str) -> bytes:
    body = protocol.dump(payload)
    head = f"{kind} {protocol.VERSION} {protocol.sign(key, body)}\n".encode()
    return protocol.encode_raw(head + body)


def unpack(data: bytes, kind: str) -> tuple[bytes, str, dict]:
    """(signed bytes, signature, payload) of a file, or SyncError("bad_bundle")."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        text = inflater.decompress(data, MAX_UNPACKED + 1)
    except zlib.error as e:
        raise SyncError("bad_bundle") from e
    if not inflater.eof or len(text) > MAX_UNPACKED:
        raise SyncError("bad_bundle")
    head, _, body = text.partition(b"\n")
    parts = head.decode("ascii", "replace").split(" ")
    if len(parts) != 3 or parts[0] != kind:
        raise SyncError("bad_bundle")
    try:
        protocol.check_version(parts[1])
        payload = protocol.load(body)
    except (protocol.ProtocolError, ValueError) as e:
        raise SyncError("bad_bundle") from e
    if not isinstance(payload, dict):
        raise SyncError("bad_bundle")
    return body, parts[2], payload


def export(db: Database, batch_size: int = protocol.DEFAULT_BATCH) -> tuple[bytes, dict]:
    """A bundle of every pending change (the file's bytes) and what it holds."""
    state = store.state(db)
    if not state.get("token"):
        raise SyncError("not_enrolled")
    checkpoint = start = int(state.get("push_checkpoint", 0))
    batches = []
    while rows := store.pending(db, start, batch_size):
        batches.append({"batch": batch_id(start, rows), "records": [r["item"] for r in rows]})
        start = rows[-1]["seq"]
    if not batches:
        raise SyncError("nothing_pending")
    summary = {"id": str(uuidlib.uuid4()), "device": state["device"], "from": checkpoint, "to": start,
               "records": sum(len(b["records"]) for b in batches), "created_at": now()}
    payload = {**summary, "batches": batches}
    return pack(BUNDLE, payload, protocol.signing_key(state["token"])), summary


def import_receipt(db: Database, data: bytes) -> dict:
    """Advance the checkpoint with central's receipt; importing it again changes nothing."""
    state = store.state(db)
    if not state.get("token"):
        raise SyncError("not_enrolled")
    body, signature, payload = unpack(data, RECEIPT)
    if not protocol.verify(protocol.signing_key(state["token"]), body, signature):
        raise SyncError("bad_signature")
    if payload.get("device") != state.get("device"):
        raise SyncError("other_device")
    try:
        start, end, results = int(payload["from"]), int(payload["to"]), payload["results"]
        receipt = payload["receipt"]
    except (KeyError, TypeError, ValueError) as e:
        raise SyncError("bad_bundle") from e
    checkpoint = int(state.get("push_checkpoint", 0))
    advanced = start <= checkpoint < end
    if advanced:
        messages = {r["uuid"]: r.get("message", "") for r in results}
        store.acknowledge(db, checkpoint=checkpoint, to_seq=end, results=results, messages=messages)
        store.set_state(db, last_sync=now(), last_receipt=json.dumps(receipt))
    return {**receipt, "advanced": advanced}


def audit_details(about: dict) -> dict:
    """What the audit log keeps of a bundle written or a receipt imported: ids and counts."""
    kept = {k: about[k] for k in ("id", "from", "to", "records", "advanced") if k in about}
    return {**kept, **about.get("counts", {})}
