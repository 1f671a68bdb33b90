"""The wire format of hop 2: protocol version, headers, secrets, signatures, and the shape of what
crosses the wire in each direction. No Flask, no SQL: both sides and the bundle use it.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass

import orjson

from fieldapp.domain.records import canonical, is_uuid, text_hash

VERSION = 1  # bump when either side must understand something new
MIN_VERSION = 1  # the oldest field protocol this central still accepts

PROTOCOL_HEADER = "Fieldapp-Protocol"
CLOCK_HEADER = "Fieldapp-Clock"  # the sender's clock (UTC ISO 8601): central records the offset
APP_HEADER = "Fieldapp-Version"

DEFAULT_BATCH = 500
MAX_BATCH = 2000  # records per push request
MAX_BODY = 16 * 1024 * 1024  # bytes of JSON once decompressed: a cap against gzip bombs
CLOCK_WARNING_SECONDS = 300

ITEM_KEYS = {"uuid", "form", "v", "base", "base_hash", "hash", "deleted", "answers", "parent", "person",
             "by", "at"}


class ProtocolError(ValueError):
    """Something that does not follow the protocol: `ProtocolError("bad_json")`."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


# Secrets: enrolment codes are typed by a person, tokens never are.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_code() -> str:
    """A one-time enrolment code a supervisor can type: `new_code() == "K7QM-X3PA-9RTE"`."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def normalise_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def new_token() -> str:
    """A device token, made by the device itself: central gets only its hash and the signing key
    derived from it, so no answer ever carries it; it travels in the device's Authorization header."""
    return secrets.token_urlsafe(32)


def is_hex64(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def secret_hash(secret: str) -> str:
    """How central stores a code or a token: the hash, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def signing_key(token: str) -> str:
    """The key that signs bundles and receipts, derived from the device token on both sides."""
    return hmac.new(token.encode(), b"fieldapp bundle signing v1", hashlib.sha256).hexdigest()


def sign(key: str, payload: bytes) -> str:
    return hmac.new(bytes.fromhex(key), payload, hashlib.sha256).hexdigest()


def verify(key: str, payload: bytes, signature: str) -> bool:
    return isinstance(signature, str) and hmac.compare_digest(sign(key, payload), signature)


# Bodies: JSON, gzip-compressed on the way up.

def encode(payload: dict) -> bytes:
    return encode_raw(dump(payload))


def encode_raw(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def dump(payload: dict) -> bytes:
    """JSON as UTF-8, no spaces. orjson, for speed (a push body holds 500 records' answers)."""
    return orjson.dumps(payload)


def load(body: bytes | str):
    """Parse JSON, strictly: no NaN, no lone surrogates, UTF-8 only (ValueError otherwise)."""
    return orjson.loads(body)


def decode(body: bytes, *, gzipped: bool, limit: int = MAX_BODY) -> dict:
    """Parse a request body; raise ProtocolError for anything that is not a JSON object."""
    if gzipped:
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as e:
            raise ProtocolError("bad_gzip") from e
        if len(body) > limit:
            raise ProtocolError("too_large", limit=limit)
        if not inflater.eof:
            raise ProtocolError("bad_gzip")  # cut short
    try:
        payload = load(body)
    except ValueError as e:
        raise ProtocolError("bad_json") from e
    if not isinstance(payload, dict):
        raise ProtocolError("bad_json")
    return payload


def check_version(value: str | None) -> int:
    """The sender's protocol version, or ProtocolError saying which side to upgrade."""
    try:
        version = int(value or "")
    except ValueError as e:
        raise ProtocolError("no_protocol") from e
    if version < MIN_VERSION:
        raise ProtocolError("upgrade_field", theirs=version, ours=VERSION)
    if version > VERSION:
        raise ProtocolError("upgrade_central", theirs=version, ours=VERSION)
    return version


@dataclass(slots=True)  # not frozen: one per pushed revision, and frozen ones are slow to build
class Item:
    """One revision pushed by a device."""

    uuid: str
    form: str
    version: int
    base: int
    base_hash: str  # the hash of the revision edited: the same number may name another version
    hash: str
    deleted: bool
    answers: dict
    parent: str
    person: str
    by: str
    at: str
    data: str  # the answers as records.canonical encodes them: hashed here, stored as they are

    @property
    def revision(self) -> int:
        return self.base + 1


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_item(raw) -> Item:
    """Check the shape of one pushed revision (not its answers: the form validator does that)."""
    if not isinstance(raw, dict):
        raise ProtocolError("malformed")
    if raw.keys() != ITEM_KEYS:
        unknown = raw.keys() - ITEM_KEYS
        if unknown:
            raise ProtocolError("unknown_fields", fields=", ".join(sorted(unknown)[:5]))
        raise ProtocolError("missing_fields", fields=", ".join(sorted(ITEM_KEYS - raw.keys())))
    ok = (
        is_uuid(raw["uuid"]) and isinstance(raw["form"], str) and _is_int(raw["v"])
        and _is_int(raw["base"]) and 0 <= raw["base"] < 1_000_000
        and isinstance(raw["hash"], str) and isinstance(raw["deleted"], bool)
        and isinstance(raw["base_hash"], str) and len(raw["base_hash"]) <= 64
        and isinstance(raw["answers"], dict) and isinstance(raw["by"], str) and len(raw["by"]) <= 100
        and isinstance(raw["at"], str) and len(raw["at"]) <= 40
        and (raw["parent"] == "" or is_uuid(raw["parent"]))
        and (raw["person"] == "" or is_uuid(raw["person"]))
    )
    if not ok:
        raise ProtocolError("malformed")
    try:
        data = canonical(raw["answers"])
        digest = text_hash(data, raw["deleted"])
    except (RecursionError, UnicodeEncodeError) as e:  # nested beyond reason, a lone surrogate
        raise ProtocolError("malformed") from e
    if digest != raw["hash"]:
        raise ProtocolError("hash_mismatch")
    return Item(raw["uuid"], raw["form"], raw["v"], raw["base"], raw["base_hash"], raw["hash"],
                raw["deleted"], raw["answers"], raw["parent"], raw["person"], raw["by"], raw["at"],
                data)


def digest(results: list[dict]) -> str:
    """What both sides show of a sync's receipt: a hash over every record central confirmed.

    Order-independent, so central and the device compute it from their own lists alike.
    """
    lines = sorted(f"{r['uuid']}:{r['revision']}:{r['outcome']}" for r in results)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def short(value: str) -> str:
    """A digest as people read it aloud: `short("ab12cd34...") == "AB12-CD34-EF56"`."""
    return "-".join(value[i:i + 4] for i in range(0, 12, 4)).upper()
