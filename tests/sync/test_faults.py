"""Fault injection between field servers and a real central process.

The issue's words: a small TCP proxy between field and central that cuts requests and responses at
random byte offsets, delays and resets; a central process killed with SIGKILL at random moments
during a sync of several thousand records, then restarted. After the dust settles and a final clean
sync, central holds exactly the union of the posts' records (none missing, none doubled, every
revision present) and `PRAGMA integrity_check` is ok on every database.

Every test draws its choices from random.Random(seed): which records, which edits, which faults,
when to kill. What the network and the kernel make of those choices varies from run to run; the
assertions hold whatever it is.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
import uuid as uuidlib
from collections import Counter

import pytest

from fieldapp.forms import schema
from fieldapp.storage import records
from fieldapp.storage import sync as store
from sync import client
from tests.sync.harness import heads, intake_answers, integrity, revisions
from tests.sync.tcpproxy import FaultyProxy

# What a fault may make of a sync, once the client has retried: the network failed, or an answer
# came back cut short. A refusal (4xx) or a server error (5xx) would be central misbehaving.
TRANSIENT = {"unreachable", "bad_answer"}
CORRECTION = "Corregido en la oficina central."


# Records, written as a field server's pages write them, in bulk ---------------------------------


def _uuid(rng: random.Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def _intakes(field, rng: random.Random, n: int) -> list[str]:
    """`n` new intakes at a post in one transaction; their uuids in the order of the change feed."""
    definition = schema.get("intake")
    subs = [records.Submission(uuid=_uuid(rng), definition=definition, answers=intake_answers(rng),
                               post=field.post, device="field-" + field.post, user=field.officer)
            for _ in range(n)]
    assert all(d.outcome == "stored" for d in records.save_batch(field.db, subs))
    return [s.uuid for s in subs]


def _revise(field, uuids: list[str], *, deleted: bool = False, **changes) -> None:
    """Edit (or delete) records in one transaction, each as Field.edit (Field.delete) does."""
    subs = []
    for uuid in uuids:
        r = records.get(field.db, uuid)
        subs.append(records.Submission(
            uuid=uuid, definition=schema.get(r["form"]), answers={**r["answers"], **changes},
            post=field.post, device="field-" + field.post, user=field.officer,
            base_revision=r["revision"], deleted=deleted, parent=r["parent"], person=r["person"]))
    assert all(d.outcome == "stored" for d in records.save_batch(field.db, subs))


# Syncing on a bad line, and what must hold afterwards -------------------------------------------


def _sync_until_done(field, url: str, rng: random.Random, errors: Counter, *,
                     batch_sizes=(50, 100, 200), keep_alive: float = 0.5, pause: float = 0.0,
                     limit: int = 400, on_progress=lambda p: None) -> tuple[client.Progress, int]:
    """Sync again and again, as an operator on a bad line would, until one sync runs to its end.

    Each try draws its batch size (so a batch whose answer was lost may come back cut differently:
    a duplicate, not a repeated batch) and whether its requests share a keep-alive connection or
    each open their own (so every request meets the proxy's dice). Returns the progress of the
    sync that ended and how many tries failed before it; `errors` counts why they failed.
    """
    for tries in range(limit):
        central = field.central(url, attempts=2, backoff=0.01)
        if rng.random() >= keep_alive:
            central.session.headers["Connection"] = "close"
        batch_size = rng.choice(batch_sizes)
        try:
            return client.run(field.db, central, batch_size=batch_size, on_progress=on_progress), tries
        except client.SyncError as e:
            errors[e.code] += 1
            time.sleep(pause)
        finally:
            central.session.close()
    raise AssertionError(f"{field.post}: no sync ran to its end in {limit} tries: {dict(errors)}")


def _clean_syncs(field, url: str) -> None:
    """The final clean sync, twice: merges central made come back in the first one's pull."""
    first = field.sync(url)
    assert first.counts["rejected"] == 0 and first.receipt["matches"]
    again = field.sync(url)
    assert again.sent == 0 and again.pulled == 0, again.as_dict()


def _assert_converged(central, made: list[tuple]) -> None:
    """Central holds exactly the union of the posts' records (`made`: (field, its uuids)): none
    missing, none doubled, every revision present with the same hash; every database is intact."""
    conn = central.db()
    try:
        assert integrity(conn) == "ok"
        for field, uuids in made:
            assert integrity(field.db) == "ok"
            at_central = heads(conn, field.post)
            assert len(at_central) == len(uuids)
            missing, extra = uuids - set(at_central), set(at_central) - uuids
            assert not missing and not extra, (len(missing), len(extra))
            assert at_central == heads(field.db, field.post)
            assert revisions(conn, field.post) == revisions(field.db, field.post)
            checkpoint = int(store.state(field.db)["push_checkpoint"])
            assert store.pending_count(field.db, checkpoint) == 0
            assert store.outcomes(field.db, "rejected") == []
            # The field's own feed: one change per revision it wrote.
            assert field.db.execute(
                "SELECT uuid, revision, count(*) FROM changes WHERE kind = 'record'"
                " GROUP BY 1, 2 HAVING count(*) > 1").fetchall() == []
        # None doubled, at central as a whole.
        assert conn.execute("SELECT uuid, revision, count(*) FROM revisions GROUP BY 1, 2"
                            " HAVING count(*) > 1").fetchall() == []
        assert conn.execute("SELECT uuid, count(*) FROM records GROUP BY 1"
                            " HAVING count(*) > 1").fetchall() == []
        # Central's feed for these posts: every revision announced, each once, except that a
        # conflict left open announces central's head once more (so the device pulls it).
        posts = [f.post for f, _ in made]
        marks = ", ".join("?" * len(posts))
        feed = Counter(conn.execute(
            f"SELECT uuid, revision FROM changes WHERE kind = 'record' AND post IN ({marks})",
            posts).fetchall())
        again = Counter(conn.execute(
            f"SELECT uuid, head_revision FROM conflicts WHERE status = 'open' AND post IN ({marks})",
            posts).fetchall())
        doubled = {k: n for k, n in feed.items() if n != 1 + again.get(k, 0)}
        assert doubled == {}, list(doubled.items())[:5]
        stored = {k for f, _ in made for k in revisions(conn, f.post)}
        assert set(feed) == stored
        assert conn.execute(
            f"SELECT uuid, revision, origin, count(*) FROM changes WHERE kind = 'record'"
            f" AND post IN ({marks}) AND origin != '' GROUP BY 1, 2, 3 HAVING count(*) > 1",
            posts).fetchall() == []
    finally:
        conn.close()


# 1. A faulty network ------------------------------------------------------------------------


def test_two_posts_through_a_faulty_network_leave_central_with_exactly_their_records(
        central, make_field):
    """Two posts, 1,500 intakes each plus edits and deletes, sync through a proxy that cuts
    requests and responses at random byte offsets, resets connections and delays them; central
    corrects some records meanwhile (merges and conflicts), the posts edit and delete more, and
    sync through the proxy again. After a final clean sync central holds exactly the union of the
    posts' records with every revision, merges and conflicts happened once each as expected, no
    fault ever surfaced as anything but a retryable failure, and every database is intact."""
    rng = random.Random(101)
    a, b = make_field(), make_field()
    made = {f.post: _intakes(f, rng, 1500) for f in (a, b)}
    plan = {}
    for f in (a, b):
        ids = list(made[f.post])
        rng.shuffle(ids)
        plan[f.post] = {
            "edited": ids[0:150], "deleted": ids[150:190],
            # after the first sync: central corrects notes, then the post...
            "conflict": ids[200:215],  # ...edits notes too: a conflict left open
            "merged": ids[130:145],  # ...edits another question of an edited record: merged
            "delete_conflict": ids[230:235],  # ...deletes it: open, a person judges
            "pulled": ids[235:245],  # ...leaves it: central's correction comes down
            "edited_again": ids[0:50] + ids[245:345], "deleted_again": ids[345:375],
        }
        _revise(f, plan[f.post]["edited"], notes="Revisado en el puesto.")
        _revise(f, plan[f.post]["deleted"], deleted=True)
    proxy = FaultyProxy(central.port, seed=102, cut_request=0.15, cut_response=0.15, reset=0.1,
                        delay=0.1, max_delay=0.05)
    errors: Counter = Counter()
    tries = Counter()
    try:
        for f in (a, b):
            tries[f.post] += _sync_until_done(f, proxy.url, rng, errors, batch_sizes=(25, 50, 100),
                                              keep_alive=0.3)[1]
        for f in (a, b):
            p = plan[f.post]
            for uuid in p["conflict"] + p["merged"] + p["delete_conflict"] + p["pulled"]:
                central.edit(uuid, notes=CORRECTION)
            for uuid in p["conflict"]:
                f.edit(uuid, notes="Versión del puesto.")
            for uuid in p["merged"]:
                f.edit(uuid, occupation="isco_5")
            for uuid in p["delete_conflict"]:
                f.delete(uuid)
            _revise(f, p["edited_again"], phone="+573001234567")
            _revise(f, p["deleted_again"], deleted=True)
            made[f.post] += _intakes(f, rng, 200)
        for f in (a, b):
            tries[f.post] += _sync_until_done(f, proxy.url, rng, errors, batch_sizes=(25, 50, 100),
                                              keep_alive=0.3)[1]
        faults, connections = dict(proxy.faults), proxy.connections
    finally:
        proxy.close()
    for f in (a, b):
        _clean_syncs(f, central.url)

    assert all(faults[kind] > 0 for kind in ("cut_request", "cut_response", "reset", "delay")), faults
    assert sum(errors.values()) > 0 and set(errors) <= TRANSIENT, errors
    print(f"\nfaulty network: {connections} connections, faults {faults}, failed tries {dict(errors)}"
          f" ({dict(tries)})")
    _assert_converged(central, [(f, set(made[f.post])) for f in (a, b)])

    conn = central.db()
    try:
        for f in (a, b):
            p = plan[f.post]
            found = Counter()
            for uuid, status in conn.execute("SELECT uuid, status FROM conflicts WHERE post = ?",
                                             [f.post]):
                found[uuid, status] += 1
            expected = Counter({(u, "open"): 1 for u in p["conflict"] + p["delete_conflict"]})
            expected.update({(u, "merged"): 1 for u in p["merged"]})
            assert found == expected
            field_heads = heads(f.db, f.post)
            for uuid in p["conflict"] + p["delete_conflict"] + p["pulled"] + p["merged"]:
                for db in (conn, f.db):
                    record = records.get(db, uuid)
                    assert record["answers"]["notes"] == CORRECTION and not record["deleted"]
            for uuid in p["merged"]:
                assert records.get(f.db, uuid)["answers"]["occupation"] == "isco_5"
            for uuid in p["deleted"] + p["deleted_again"]:
                assert field_heads[uuid][2] == 1
            conflicts = {o["uuid"] for o in store.outcomes(f.db, "conflict")}
            assert conflicts == set(p["conflict"] + p["delete_conflict"])
    finally:
        conn.close()


# 2. A central process killed with SIGKILL -------------------------------------------------


class Killer(threading.Thread):
    """Kills central with SIGKILL `kills` times, each after a random 0.05–1.5 s of sync time (time
    while `busy` is set: a sync is under way), and starts it again on the same port."""

    def __init__(self, central, rng: random.Random, kills: int, busy: threading.Event,
                 lock: threading.Lock, live: dict):
        super().__init__(daemon=True)
        self.central, self.rng, self.kills = central, rng, kills
        self.busy, self.lock, self.live = busy, lock, live
        self.stop = threading.Event()
        self.log: list[dict] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while len(self.log) < self.kills and not self.stop.is_set():
                remaining = self.rng.uniform(0.05, 1.5)
                down = self.rng.uniform(0.0, 0.2)
                while not self.stop.is_set():
                    if remaining <= 0:
                        with self.lock:
                            if self.busy.is_set():
                                pid = self.central.proc.pid
                                self.central.kill()
                                self.log.append({**self.live, "pid": pid,
                                                 "status": self.central.proc.returncode})
                                break
                    if self.busy.wait(0.1):
                        started = time.monotonic()
                        time.sleep(0.01)
                        remaining -= time.monotonic() - started
                time.sleep(down)
                self.central.start()
        except BaseException as e:  # reported by the test thread
            self.error = e


def test_central_killed_with_sigkill_during_a_sync_of_thousands_loses_and_doubles_nothing(
        central, make_field):
    """Two posts (4,000 intakes and 1,000, with edits and deletes) sync while another thread kills
    the central process with SIGKILL five times at random moments of the sync and starts it again.
    The posts keep syncing until one sync runs to its end after the last kill. After a final clean
    sync central holds exactly the union of their records with every revision, counted once in
    each device's received total, and every database (central's included) is intact."""
    rng = random.Random(201)
    a, b = make_field(), make_field()
    made = {a.post: _intakes(a, rng, 4000), b.post: _intakes(b, rng, 1000)}
    for f, edits, deletes in ((a, 300, 80), (b, 80, 20)):
        ids = sorted(made[f.post])
        _revise(f, rng.sample(ids, edits), notes="Revisado en el puesto.")
        _revise(f, rng.sample(ids, deletes), deleted=True)
    busy, lock, live = threading.Event(), threading.Lock(), {}
    killer = Killer(central, random.Random(202), 5, busy, lock, live)
    errors: Counter = Counter()
    rounds = 0
    killer.start()
    try:
        while True:
            for f in (a, b):
                live.update(post=f.post, round=rounds, phase="start", sent=0)
                busy.set()
                _sync_until_done(f, central.url, rng, errors, keep_alive=1.0, pause=0.05,
                                 on_progress=lambda p: live.update(phase=p.phase, sent=p.sent))
                with lock:
                    busy.clear()
            if len(killer.log) >= killer.kills or not killer.is_alive():
                break
            # Kills left: more work, so that each one still lands during a sync.
            rounds += 1
            assert rounds <= 20, killer.log
            made[a.post] += _intakes(a, rng, 300)
            # A phone number of this round's own: an edit that changes nothing stores nothing.
            _revise(a, rng.sample(sorted(made[a.post]), 100), phone=f"+5730012345{rounds:02d}")
    finally:
        killer.stop.set()
        killer.join(60)
        central.start()
    assert killer.error is None, killer.error
    assert len(killer.log) == 5 and all(k["status"] == -9 for k in killer.log), killer.log
    assert len({k["pid"] for k in killer.log} | {central.proc.pid}) == 6
    assert sum(errors.values()) > 0 and set(errors) <= TRANSIENT, errors
    print(f"\nSIGKILL: {len(killer.log)} kills at {[(k['post'], k['phase'], k['sent']) for k in killer.log]}"
          f", {rounds} extra rounds, failed tries {dict(errors)}")
    for f in (a, b):
        _clean_syncs(f, central.url)
    _assert_converged(central, [(f, set(made[f.post])) for f in (a, b)])
    conn = central.db()
    try:
        for f in (a, b):
            received = conn.execute("SELECT received FROM devices WHERE id = ?", [f.device]).fetchone()[0]
            theirs = conn.execute("SELECT count(*) FROM revisions WHERE origin = ?",
                                  [f.device]).fetchone()[0]
            assert received == theirs == len(revisions(f.db, f.post))
            assert conn.execute("SELECT count(*) FROM conflicts WHERE post = ?", [f.post]).fetchone()[0] == 0
    finally:
        conn.close()


# 3. One cut in the middle of a body ---------------------------------------------------------


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dropped connection looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_message(stream) -> tuple[bytes, bytes, dict] | None:
    """One HTTP/1.1 message with a Content-Length body: (head, body, headers); None at a clean end."""
    head = b""
    while True:
        line = stream.readline(65537)
        if not line:
            if head:
                raise EOFError
            return None
        head += line
        if line in (b"\r\n", b"\n"):
            break
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ValueError("chunked bodies are not relayed")
    length = int(headers.get("content-length", 0))
    body = stream.read(length)
    if len(body) < length:
        raise EOFError
    return head, body, headers


class CuttingProxy:
    """An HTTP-aware relay that cuts one chosen message exactly in the middle of its body.

    `arm("push", "request", nth=3)`: the third push request from now reaches central with half its
    (gzip) body, then both connections are reset; with "response", central answers it in full and
    the field gets half the answer's body. Every other message is relayed whole (keep-alive too).
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.lock = threading.Lock()
        self.armed: tuple[str, str, int] | None = None
        self.cuts: list[dict] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, endpoint: str, direction: str, nth: int) -> None:
        with self.lock:
            self.armed = (f"/sync/v1/{endpoint} ", direction, nth)

    def close(self) -> None:
        self.closed = True
        self.listener.close()

    def _fate(self, head: bytes) -> str:
        with self.lock:
            if self.armed is None or self.armed[0] not in head.split(b"\r\n")[0].decode():
                return ""
            endpoint, direction, nth = self.armed
            self.armed = (endpoint, direction, nth - 1) if nth > 1 else None
            return direction if nth == 1 else ""

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _cut(self, direction: str, message: tuple, sock: socket.socket) -> None:
        head, body, headers = message
        at = len(head) + len(body) // 2
        self.cuts.append({"direction": direction, "line": head.split(b"\r\n")[0].decode(),
                          "head": len(head), "body": len(body), "at": at,
                          "gzip": headers.get("content-encoding") == "gzip"})
        sock.sendall((head + body)[:at])
        time.sleep(0.05)  # let the half message arrive before the reset

    def _relay(self, down: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        down.settimeout(30)
        from_down, from_up = down.makefile("rb"), up.makefile("rb")
        cut = False
        try:
            while True:
                request = _read_message(from_down)
                if request is None:
                    return
                fate = self._fate(request[0])
                if fate == "request":
                    cut = True
                    self._cut(fate, request, up)
                    return
                up.sendall(request[0] + request[1])
                response = _read_message(from_up)
                if response is None:
                    return
                if fate == "response":
                    cut = True
                    self._cut(fate, response, down)
                    return
                down.sendall(response[0] + response[1])
                if "close" in (request[2].get("connection", "") + response[2].get("connection", "")):
                    return
        except (OSError, EOFError, ValueError):
            pass
        finally:
            from_down.close()
            from_up.close()
            if cut:
                _abort(up)
                _abort(down)
            else:
                up.close()
                down.close()


@pytest.mark.parametrize("direction", ["request", "response"])
def test_a_push_cut_in_the_middle_of_its_body_moves_no_checkpoint_past_unacknowledged_records(
        central, make_field, direction):
    """The third of four push batches is cut exactly in the middle of its gzip body: the request
    (central never gets it whole) or central's answer (central stored the batch, the field never
    hears so). Either way the field's checkpoint stays at the end of the second batch, with the
    last 200 records still pending; the next clean sync sends them, and central stores each record
    exactly once: the batch whose answer was lost is answered again from what central kept, not
    applied twice."""
    rng = random.Random(301 if direction == "request" else 302)
    field = make_field()
    made = _intakes(field, rng, 400)
    feed = [seq for (seq,) in field.db.execute(
        "SELECT seq FROM changes WHERE origin = '' AND kind = 'record' ORDER BY seq")]
    proxy = CuttingProxy(central.port)
    proxy.arm("push", direction, nth=3)
    try:
        with pytest.raises(client.SyncError) as failed:
            client.run(field.db, field.central(proxy.url, attempts=1), batch_size=100)
        assert failed.value.code == "unreachable"
        [cut] = proxy.cuts
        assert cut["direction"] == direction and cut["gzip"], cut
        assert cut["head"] < cut["at"] < cut["head"] + cut["body"], cut

        checkpoint = int(store.state(field.db)["push_checkpoint"])
        assert checkpoint == feed[199]
        assert [r["item"]["uuid"] for r in store.pending(field.db, checkpoint, 1000)] == made[200:]
        applied = 200 if direction == "request" else 300
        conn = central.db()
        try:
            assert set(heads(conn, field.post)) == set(made[:applied])
            assert conn.execute("SELECT count(*) FROM sync_batches WHERE device = ?",
                                [field.device]).fetchone()[0] == applied // 100
        finally:
            conn.close()

        done = client.run(field.db, field.central(proxy.url), batch_size=100)  # disarmed: clean
    finally:
        proxy.close()
    assert done.sent == 200 and done.counts["stored"] + done.counts["duplicate"] == 200, done.counts
    assert done.receipt["matches"]
    assert int(store.state(field.db)["push_checkpoint"]) == feed[-1]
    _assert_converged(central, [(field, set(made))])
    conn = central.db()
    try:
        assert conn.execute("SELECT count(*), sum(json_array_length(results)) FROM sync_batches"
                            " WHERE device = ?", [field.device]).fetchone() == (4, 400)
        assert conn.execute("SELECT received FROM devices WHERE id = ?",
                            [field.device]).fetchone()[0] == 400
    finally:
        conn.close()


# Engine bugs found on the way --------------------------------------------------------------


# Failed before base hashes (d99e6a9): the post's second edit, based on its own revision 2 that met
# central's correction, was taken as an edit of central's revision 2 and undid the correction.
@pytest.mark.parametrize("first_edit", ["same_question", "other_question"])
def test_a_second_field_edit_does_not_undo_a_central_correction(central, make_field, first_edit):
    """Central corrects a record's notes; offline, the post edits it twice (first the notes too,
    or another question; then the phone). The post's second edit changed neither the notes nor
    anything central changed, so central's head must keep central's notes (the post's notes wait
    in the open conflict, or never touched them)."""
    field = make_field()
    uuid = field.intake(random.Random(401))
    field.sync()
    central.edit(uuid, notes=CORRECTION)
    if first_edit == "same_question":
        field.edit(uuid, notes="Versión del puesto.")
    else:
        field.edit(uuid, occupation="isco_5")
    field.edit(uuid, phone="+573001234567")
    field.sync()
    conn = central.db()
    try:
        assert records.get(conn, uuid)["answers"]["notes"] == CORRECTION
        assert records.get(field.db, uuid)["answers"]["notes"] == CORRECTION
        assert revisions(conn, field.post) == revisions(field.db, field.post)
    finally:
        conn.close()


def test_a_merged_revision_sent_again_after_a_lost_answer_is_received_once(central, make_field):
    """Two records synced; central corrects one, the post edits another question of it (a merge)
    and edits the other. The answer to the push of both is cut; the post syncs again with another
    batch size, so the same two revisions come in a different batch. Central received two new
    revisions from the device, and its count of received revisions must say two, not three."""
    field = make_field()
    rng = random.Random(501)
    merged, plain = _intakes(field, rng, 2)
    field.sync()
    central.edit(merged, notes=CORRECTION)
    field.edit(merged, occupation="isco_5")
    field.edit(plain, phone="+573001234567")
    conn = central.db()
    try:
        before = conn.execute("SELECT received FROM devices WHERE id = ?", [field.device]).fetchone()[0]
        proxy = CuttingProxy(central.port)
        proxy.arm("push", "response", nth=1)
        try:
            with pytest.raises(client.SyncError):
                client.run(field.db, field.central(proxy.url, attempts=1), batch_size=2)
        finally:
            proxy.close()
        done = field.sync(batch_size=1)
        assert done.counts["merged"] == 1 and done.counts["duplicate"] == 1, done.counts
        after = conn.execute("SELECT received FROM devices WHERE id = ?", [field.device]).fetchone()[0]
        assert after - before == 2
    finally:
        conn.close()
