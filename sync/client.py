"""A field server's side of hop 2: talk to central (timeouts, TLS, retries with backoff and jitter)
and run a sync — push the change feed in batches, pull what central has for the post, finish with
a receipt. Every step is checkpointed, so an interrupted sync continues where it stopped."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata

import requests
from sqlite_utils import Database

from fieldapp.domain.records import now
from fieldapp.storage import db as storage_db
from fieldapp.storage import sync as store
from sync import protocol


def installed_version() -> str:
    try:
        return metadata.version("fieldapp")
    except metadata.PackageNotFoundError:
        return ""


TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
             requests.exceptions.ContentDecodingError)


class SyncError(Exception):
    """A sync that cannot go on: `code` says why; `message` is central's, in the asked language.

    Local codes: not_enrolled, unreachable (network, after every retry), tls, server (5xx after
    every retry), bad_answer (not the protocol), busy (another sync runs), post_mismatch,
    newer_forms (central sent a form version this server lacks), nothing_pending (an empty bundle).
    """

    def __init__(self, code: str, message: str = "", status: int = 0):
        super().__init__(code)
        self.code, self.message, self.status = code, message, status


@dataclass
class Settings:
    url: str
    token: str = ""
    verify: bool | str = True  # a CA bundle path, or True for the system's
    connect_timeout: float = 10
    read_timeout: float = 120
    attempts: int = 6
    backoff: float = 0.5  # seconds; doubles per attempt, capped, with full jitter
    backoff_cap: float = 30
    lang: str = "en"
    app_version: str = field(default_factory=lambda: installed_version())


class Central:
    """The central server as seen from a field server: `Central(Settings(url, token)).call(...)`."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.session = requests.Session()
        self.session.verify = settings.verify
        self.session.headers.update({
            protocol.PROTOCOL_HEADER: str(protocol.VERSION),
            protocol.APP_HEADER: settings.app_version,
            "Accept-Encoding": "gzip",
            "Content-Type": "application/json",
        })
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"
        self.sleep = sleep
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.clock_offset: float | None = None  # seconds this server's clock is ahead of central's

    def url(self, endpoint: str) -> str:
        return f"{self.settings.url.rstrip('/')}/{self.settings.lang}/sync/v1/{endpoint}"

    def call(self, endpoint: str, payload: dict, *, compress: bool = True) -> dict:
        """POST a JSON payload; retry network errors and 5xx; raise SyncError for a refusal."""
        body = protocol.encode(payload) if compress else protocol.dump(payload)
        return self.post(endpoint, body, compressed=compress)

    def post(self, endpoint: str, body: bytes, *, compressed: bool) -> dict:
        """POST a body already encoded (gzip-compressed or not), as `call` does."""
        headers = {"Content-Encoding": "gzip"} if compressed else {}
        s = self.settings
        for attempt in range(s.attempts):
            if attempt:
                self.sleep(random.uniform(0, min(s.backoff_cap, s.backoff * 2 ** attempt)))
            headers[protocol.CLOCK_HEADER] = now()
            started = time.time()
            try:
                response = self.session.post(self.url(endpoint), data=body, headers=headers,
                                             timeout=(s.connect_timeout, s.read_timeout))
                content = response.content
            except requests.exceptions.SSLError as e:
                raise SyncError("tls", str(e.__class__.__name__)) from e
            except TRANSIENT:
                last = SyncError("unreachable")
                continue
            finally:
                self.requests += 1
                self.bytes_sent += len(body)
            self.bytes_received += int(response.raw.tell() or len(content)) if response.raw else len(content)
            if response.status_code >= 500 or response.status_code == 429:
                last = SyncError("server", status=response.status_code)
                continue
            try:
                answer = protocol.load(content)
            except ValueError:
                last = SyncError("bad_answer", status=response.status_code)
                continue  # a body cut short by a proxy reads as invalid JSON: try again
            if not isinstance(answer, dict):
                raise SyncError("bad_answer", status=response.status_code)
            if response.status_code != 200 or not answer.get("ok"):
                error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
                raise SyncError(str(error.get("code", "refused")), str(error.get("message", "")),
                                response.status_code)
            self._clock(answer.get("central_time"), started, time.time())
            return answer
        raise last

    def _clock(self, central_time, started: float, ended: float) -> None:
        try:
            theirs = datetime.fromisoformat(str(central_time).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return
        self.clock_offset = round((started + ended) / 2 - theirs, 1)


def enrol(db: Database, settings: Settings, code: str, post: str) -> dict:
    """Exchange an enrolment code for this device's enrolment; remember central and the token.

    The token is made here and kept for this code until central confirms, so a retry after a
    lost answer is the same enrolment rather than a used code."""
    code_key = protocol.secret_hash(protocol.normalise_code(code))
    state = store.state(db)
    pending = json.loads(state.get("enrol_pending", "{}"))
    token = pending.get("token") if pending.get("code") == code_key else None
    token = token or protocol.new_token()
    store.set_state(db, enrol_pending=json.dumps({"code": code_key, "token": token}))
    answer = Central(settings).call("enrol", {
        "code": code, "post": post, "token_hash": protocol.secret_hash(token),
        "signing_key": protocol.signing_key(token)}, compress=False)
    if answer.get("post") != post:
        raise SyncError("post_mismatch")
    # Enrolled again at the same central (a revoked or replaced enrolment): what it confirmed
    # stays confirmed. At another central, everything is new there.
    restart = {} if state.get("central_url") == settings.url else {"push_checkpoint": 0, "pull_cursor": 0}
    store.set_state(db, central_url=settings.url, device=answer["device"], device_name=answer["name"],
                    token=token, enrolled_at=now(), enrol_pending=None, **restart)
    return answer


@dataclass
class Progress:
    """What a sync has done so far; `phase` is push, pull, finish or done."""

    phase: str = "push"
    total: int = 0  # revisions to push when the sync started
    sent: int = 0
    counts: dict = field(default_factory=lambda: {
        "stored": 0, "duplicate": 0, "conflict": 0, "merged": 0, "rejected": 0})
    pulled: int = 0
    accounts: int = 0
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    clock_offset: float | None = None
    receipt: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def batch_id(start: int, rows: list[dict]) -> str:
    """Names a batch by its place in the feed and its content: a repeat after a lost answer is
    recognised, and a feed written again after a restore from backup is not mistaken for it."""
    content = hashlib.sha256("".join(r["item"]["uuid"] + r["item"]["hash"] for r in rows).encode())
    return f"{start}-{rows[-1]['seq']}-{content.hexdigest()[:16]}"


def run(db: Database, central: Central, *, batch_size: int = protocol.DEFAULT_BATCH,
        on_progress: Callable[[Progress], None] = lambda p: None) -> Progress:
    """One sync: push everything pending, pull what central has, finish with central's receipt."""
    progress = Progress()
    state = store.state(db)
    progress.total = store.pending_count(db, int(state.get("push_checkpoint", 0)))
    sync_id = str(uuidlib.uuid4())
    batches: list[str] = []
    results: list[dict] = []
    for _round in range(3):
        _push(db, central, sync_id, batch_size, progress, batches, results, on_progress)
        skipped = _pull(db, central, batch_size, progress, on_progress)
        if not skipped:
            break  # else records changed here during the sync: push them, then pull again
    progress.phase = "finish"
    on_progress(progress)
    receipt = central.call("finish", {"sync": sync_id, "batches": batches})["receipt"]
    receipt["matches"] = receipt["digest"] == protocol.digest(results)
    progress.receipt = receipt
    progress.clock_offset = central.clock_offset
    _count_io(progress, central)
    # Bookkeeping: central keeps the receipt too, so this one need not wait for the disk.
    store.set_state(db, last_sync=now(), last_receipt=json.dumps(receipt),
                    clock_offset=central.clock_offset, durable=False)
    progress.phase = "done"
    on_progress(progress)
    return progress


def _count_io(progress: Progress, central: Central) -> None:
    progress.requests = central.requests
    progress.bytes_sent = central.bytes_sent
    progress.bytes_received = central.bytes_received


@dataclass
class _Batch:
    """The next revisions of the change feed after `start`, at most `size`, as one push body."""

    start: int
    size: int
    rows: list[dict]
    id: str = ""
    body: bytes = b""


def _read_batch(db: Database, sync_id: str, start: int, size: int) -> _Batch:
    rows = store.pending(db, start, size)
    if not rows:
        return _Batch(start, size, rows)
    batch = batch_id(start, rows)
    body = protocol.encode({"sync": sync_id, "batch": batch, "records": [r["item"] for r in rows]})
    return _Batch(start, size, rows, batch, body)


class _Pipeline:
    """Keeps central busy: while it applies one batch, a thread with a connection of its own reads
    and encodes the next one, and the next is sent as soon as the answer comes, before that answer
    is acknowledged here. Central still gets each batch only after answering the one before it,
    and the checkpoint still moves one answered batch at a time, in order."""

    def __init__(self, db: Database, central: Central, sync_id: str):
        self.central, self.sync_id = central, sync_id
        self.path = getattr(db, "_fieldapp_path", None)
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="fieldapp-sync-read")
        self.sender = ThreadPoolExecutor(1, thread_name_prefix="fieldapp-sync-send")
        self.local = threading.local()
        self.ahead: Future | None = None

    def _read(self, start: int, size: int) -> _Batch:
        if getattr(self.local, "db", None) is None:
            self.local.db = storage_db.connect(self.path)
        return _read_batch(self.local.db, self.sync_id, start, size)

    def read_ahead(self, start: int, size: int) -> None:
        if self.path is not None:
            self.ahead = self.reader.submit(self._read, start, size)

    def take(self, start: int, size: int) -> _Batch | None:
        """The batch read ahead, if it is the one wanted now and holds something (else it is read
        again here: whether the feed is done is decided on this thread, as it was read last)."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None
        try:
            batch = ahead.result()
        except Exception:  # noqa: BLE001 - read again on this thread, where an error is reported
            return None
        return batch if batch.rows and (batch.start, batch.size) == (start, size) else None

    def send(self, batch: _Batch) -> Future:
        return self.sender.submit(self.central.post, "push", batch.body, compressed=True)

    def close(self) -> None:
        self.sender.shutdown(wait=True)

        def close_db():
            if getattr(self.local, "db", None) is not None:
                self.local.db.close()

        self.reader.submit(close_db).result()
        self.reader.shutdown(wait=True)


def _push(db, central, sync_id, batch_size, progress, batches, results, on_progress) -> None:
    progress.phase = "push"
    pipeline = _Pipeline(db, central, sync_id)
    try:
        _push_batches(db, pipeline, batch_size, progress, batches, results, on_progress)
    finally:
        pipeline.close()


def _push_batches(db, pipeline, batch_size, progress, batches, results, on_progress) -> None:
    central, sync_id = pipeline.central, pipeline.sync_id
    sent: tuple[_Batch, Future] | None = None  # the batch central is answering
    while True:
        checkpoint = int(store.state(db).get("push_checkpoint", 0))
        if sent is None or sent[0].start != checkpoint or sent[0].size != batch_size:
            if sent is not None:
                sent[1].exception()  # not wanted after all (another sync moved the checkpoint)
            batch = pipeline.take(checkpoint, batch_size) or _read_batch(db, sync_id, checkpoint,
                                                                        batch_size)
            if not batch.rows:
                return
            sent = (batch, pipeline.send(batch))
            pipeline.read_ahead(batch.rows[-1]["seq"], batch_size)
        batch, answer_of = sent
        rows = batch.rows
        try:
            answer = answer_of.result()
        except SyncError as e:
            if e.status != 413 or len(rows) == 1:
                raise
            batch_size = max(1, len(rows) // 2)  # too large for central: smaller batches
            sent = None
            continue
        answered = answer.get("results")
        if not isinstance(answered, list) or len(answered) != len(rows):
            raise SyncError("bad_answer")
        # Central has applied this batch: the next one can go while this answer is noted here.
        sent = None
        following = pipeline.take(rows[-1]["seq"], batch_size)
        if following is not None:
            sent = (following, pipeline.send(following))
            pipeline.read_ahead(following.rows[-1]["seq"], batch_size)
        messages = {r["uuid"]: r.get("message", "") for r in answered}
        if not store.acknowledge(db, checkpoint=checkpoint, to_seq=rows[-1]["seq"], results=answered,
                                 messages=messages):
            raise SyncError("busy")
        batches.append(batch.id)
        results.extend(answered)
        progress.sent += len(rows)
        progress.total = max(progress.total, progress.sent)
        for r in answered:
            progress.counts["merged" if r.get("code") == "merged" else r["outcome"]] += 1
        _count_io(progress, central)
        on_progress(progress)


def _pull(db, central, batch_size, progress, on_progress) -> int:
    progress.phase = "pull"
    on_progress(progress)
    skipped = 0
    while True:
        state = store.state(db)
        cursor = int(state.get("pull_cursor", 0))
        answer = central.call("pull", {"cursor": cursor, "limit": batch_size}, compress=False)
        forms = json.dumps(answer.get("forms", {}))
        if state.get("central_forms") != forms:  # seldom changes: no write (and fsync) each time
            store.set_state(db, central_forms=forms)
        try:
            counts = store.adopt(db, answer["records"], answer["accounts"], int(answer["cursor"]))
        except store.UnknownForm as e:
            raise SyncError("newer_forms") from e
        except (KeyError, TypeError, ValueError) as e:
            raise SyncError("bad_answer") from e
        skipped += counts["skipped"]
        progress.pulled += counts["applied"]
        progress.accounts += counts["accounts"]
        _count_io(progress, central)
        on_progress(progress)
        if not answer.get("more"):
            return skipped


def clock_skewed(offset: float | None) -> bool:
    return offset is not None and abs(offset) > protocol.CLOCK_WARNING_SECONDS


def settings_for(db: Database, config: dict, lang: str = "en") -> Settings:
    """The client settings of an enrolled field server: its sync state plus the app config."""
    state = store.state(db)
    if not state.get("token"):
        raise SyncError("not_enrolled")
    return Settings(url=state["central_url"], token=state["token"],
                    verify=config.get("SYNC_CA_BUNDLE") or True, lang=lang)
