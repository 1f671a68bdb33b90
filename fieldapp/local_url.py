"""The address of the fieldapp running on this computer, for `fieldapp open` and its shortcut.

A server started with `serve --https` answers a TLS handshake on its port (8443 unless set);
one started with plain `serve` answers HTTP on PORT. Whichever answers is the one to open.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from fieldapp import tls

TIMEOUT = 2.0


def https(port: int | None = None) -> str:
    # "localhost" is a name the server certificate covers; 127.0.0.1 is too, but browsers show names.
    return f"https://localhost:{port or tls.DEFAULT_PORT}/"


def http(config, port: int | None = None) -> str:
    host, port = _http_address(config, port)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _http_address(config, port: int | None) -> tuple[str, int]:
    host = config["HOST"]
    return ("127.0.0.1" if host in ("", "0.0.0.0", "::") else host), port or config["PORT"]


def find(config, port: int | None = None) -> str | None:
    """The URL of the server that answers on this computer, HTTPS first; None if none does."""
    if _speaks_tls(port or tls.DEFAULT_PORT):
        return https(port)
    return http(config, port) if _answers(*_http_address(config, port)) else None


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return True
    except OSError:
        return False


def _speaks_tls(port: int) -> bool:
    context = ssl.create_default_context()
    # Only whether it speaks TLS: the browser checks the certificate itself.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (contextlib.suppress(OSError),
          socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
          context.wrap_socket(raw, server_hostname="localhost")):
        return True
    return False
