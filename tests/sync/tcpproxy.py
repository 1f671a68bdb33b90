"""A small TCP proxy that misbehaves on purpose, between a field server and central.

Each connection is relayed byte for byte, unless the dice say otherwise: the request is cut at a
random byte offset (central never sees all of it), the response is cut at a random byte offset
(central did the work, the field never hears back), the connection is reset, or everything is
delayed. `FaultyProxy(central_port, seed=1)`, then `.url`; set the probabilities any time.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
import time


class FaultyProxy:
    def __init__(self, target_port: int, *, seed: int = 0, cut_request: float = 0.0,
                 cut_response: float = 0.0, reset: float = 0.0, delay: float = 0.0,
                 max_delay: float = 0.2):
        self.target_port = target_port
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.cut_request, self.cut_response, self.reset = cut_request, cut_response, reset
        self.delay, self.max_delay = delay, max_delay
        self.faults = {"cut_request": 0, "cut_response": 0, "reset": 0, "delay": 0}
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, **probabilities) -> None:
        for name, value in probabilities.items():
            setattr(self, name, value)

    def clean(self) -> None:
        self.set(cut_request=0.0, cut_response=0.0, reset=0.0, delay=0.0)

    def close(self) -> None:
        self.closed = True
        self.listener.close()

    def _roll(self) -> tuple[str, int]:
        """The fate of one connection: (fault or "", byte offset where it strikes)."""
        with self.lock:
            self.connections += 1
            r = self.rng.random()
            offset = self.rng.randint(0, 4096)
            for name in ("cut_request", "cut_response", "reset", "delay"):
                p = getattr(self, name)
                if r < p:
                    self.faults[name] += 1
                    return name, offset
                r -= p
            return "", 0

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, downstream: socket.socket) -> None:
        fault, offset = self._roll()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
        except OSError:
            _abort(downstream)
            return
        if fault == "delay":
            time.sleep(self.rng.uniform(0, self.max_delay))
        if fault == "reset":
            _abort(downstream)
            _abort(upstream)
            return
        sent = {downstream: 0, upstream: 0}  # bytes relayed from each side
        peers = {downstream: upstream, upstream: downstream}
        try:
            while True:
                readable, _, _ = select.select([downstream, upstream], [], [], 60)
                if not readable:
                    break
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        raise EOFError
                    cut = {"cut_request": downstream, "cut_response": upstream}.get(fault)
                    limit = offset if sock is cut else None
                    if limit is not None and sent[sock] + len(data) > limit:
                        peers[sock].sendall(data[: max(0, limit - sent[sock])])
                        raise ConnectionAbortedError
                    peers[sock].sendall(data)
                    sent[sock] += len(data)
        except (EOFError, OSError):
            pass
        finally:
            if fault in ("cut_request", "cut_response"):
                _abort(downstream)
                _abort(upstream)
            else:
                downstream.close()
                upstream.close()


def _abort(sock: socket.socket) -> None:
    """Close with a TCP reset rather than a clean end: as a dropped connection looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
