"""A small HTTP reverse proxy for browser tests: the browser talks to it as if it were the field
server, and a test can change what passes through: serve a new release of /sw.js, or fail a page
as an overloaded server would."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


class Proxy:
    """`Proxy(upstream_port).rewrite = {"/sw.js": lambda body: ...}`; `.refuse = {"/en/outbox"}`
(answered 503 without asking the server); `.answered`, the (path, status) of each answer so far;
`.url`; `.close()`."""

    def __init__(self, upstream_port: int):
        self.rewrite: dict[str, Callable[[bytes], bytes]] = {}
        self.refuse: set[str] = set()
        self.answered: list[tuple[str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                if self.path.split("?")[0] in proxy.refuse:
                    self.send_error(503)
                    proxy.answered.append((self.path, 503))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    upstream.close()
                change = proxy.rewrite.get(self.path.split("?")[0])
                if change:
                    data = change(data)
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                proxy.answered.append((self.path, answer.status))

            do_GET = do_POST = do_HEAD = _forward

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # HTTP/1.0, so a connection per request: a burst of them (a worker's install) must not
            # overflow socketserver's backlog of 5, or the browser waits for the SYN to be retried.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
