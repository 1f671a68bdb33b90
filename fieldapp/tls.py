"""HTTPS on the post's network: a local certificate authority and a server certificate it signs.

Phones install the CA once; the server certificate is re-issued by the same CA whenever the laptop's
addresses change or it nears expiry, so phones keep trusting the laptop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_PORT = 8443
CA_DAYS = 3650
LEAF_DAYS = 397  # platforms cap the lifetime of server certificates
RENEW_BEFORE = timedelta(days=30)
BACKDATE = timedelta(days=1)  # a phone whose clock is a little behind still accepts a new certificate
_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class TLSError(Exception):
    """The local CA is incomplete (one of ca.key and ca.crt is missing); `path` is the missing file."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


@dataclass(frozen=True)
class TLSFiles:
    """Where the CA and the server certificate are, the CA's fingerprint and the names served."""

    directory: Path
    fingerprint: str  # SHA-256 of the CA certificate, colon-separated hex, as phones show it
    names: tuple[str, ...]  # host names and IP addresses the server certificate covers
    expires: datetime | None  # when the server certificate expires (it is renewed before)

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"


def local_addresses() -> tuple[list[str], list[str]]:
    """(host names, IP addresses) of this computer: its name, name.local, localhost and LAN IPv4s."""
    host = socket.gethostname().strip().lower()
    names = [n for n in (host, host.split(".")[0] + ".local", "localhost") if _HOSTNAME.fullmatch(n)]
    ips = ["127.0.0.1", "::1"]
    with contextlib.suppress(OSError, UnicodeError):
        ips += [info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET)]
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # a UDP connect sends nothing: it only picks the route
        ips.append(s.getsockname()[0])
    lan = [ip for ip in ips if not ipaddress.ip_address(ip).is_loopback and ip != "0.0.0.0"]
    return _unique(names), _unique(ips[:2] + lan)


def files(instance_dir: str | os.PathLike) -> TLSFiles | None:
    """The TLS files of an instance as they are, or None when the CA or server certificate is missing."""
    try:
        return _read(Path(instance_dir) / "tls")
    except (OSError, ValueError):
        return None


def ca_der(instance_dir: str | os.PathLike) -> bytes | None:
    """The CA certificate in DER, the form phones install, or None when there is none."""
    try:
        ca = x509.load_pem_x509_certificate((Path(instance_dir) / "tls" / "ca.crt").read_bytes())
    except (OSError, ValueError):
        return None
    return ca.public_bytes(serialization.Encoding.DER)


def ensure(instance_dir: str | os.PathLike, *, label: str = "", extra: Iterable[str] = (),
           now: datetime | None = None) -> TLSFiles:
    """Create the CA once, and a server certificate for this computer's addresses (plus `extra`)."""
    directory = Path(instance_dir) / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        directory.chmod(0o700)
    now = now or datetime.now(UTC)
    names, ips = local_addresses()
    for item in (e.strip().lower() for e in extra):
        if is_ip(item):
            ips.append(str(ipaddress.ip_address(item)))
        elif _HOSTNAME.fullmatch(item):
            names.append(item)
    names, ips = _unique(names), _unique(ips)

    ca_key_path, ca_path = directory / "ca.key", directory / "ca.crt"
    if not ca_key_path.exists() and not ca_path.exists():
        who = f"{label} ({names[0]})" if label else names[0]
        _write(ca_key_path, _new_key_pem(), private=True, replace=False)
        key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        _write(ca_path, _ca_certificate(key, f"fieldapp local CA {who}"[:64], now), private=False,
               replace=False)
    for path in (ca_key_path, ca_path):
        if not path.exists():
            raise TLSError(path)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())

    if _needs_leaf(directory, ca, names + ips, now):
        key_pem = _new_key_pem()
        key = serialization.load_pem_private_key(key_pem, None)
        _write(directory / "server.key", key_pem, private=True)
        _write(directory / "server.crt", _leaf_certificate(key, ca, ca_key, names, ips, now),
               private=False)
    return _read(directory)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint in colon hex: `AB:CD:…`."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def is_ip(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True


def _read(directory: Path) -> TLSFiles:
    ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    leaf = x509.load_pem_x509_certificate((directory / "server.crt").read_bytes())
    return TLSFiles(directory, fingerprint(ca), tuple(_covered(leaf)), leaf.not_valid_after_utc)


def _needs_leaf(directory: Path, ca: x509.Certificate, wanted: list[str], now: datetime) -> bool:
    try:
        leaf = x509.load_pem_x509_certificate((directory / "server.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "server.key").read_bytes(), None)
        leaf.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return True
    return (
        leaf.not_valid_after_utc - RENEW_BEFORE < now
        or _public_bytes(key.public_key()) != _public_bytes(leaf.public_key())
        or not set(wanted) <= set(_covered(leaf))
    )


def _covered(leaf: x509.Certificate) -> list[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName) + [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _ca_certificate(key, common_name: str, now: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fieldapp"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now - BACKDATE + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _leaf_certificate(key, ca: x509.Certificate, ca_key, names: list[str], ips: list[str],
                      now: datetime) -> bytes:
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fieldapp"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now - BACKDATE + timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # EC keys sign the handshake; key encipherment is for RSA key exchange only.
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(**granted: bool) -> x509.KeyUsage:
    usages = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{u: granted.get(u, False) for u in usages})


def _new_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _public_bytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _write(path: Path, data: bytes, *, private: bool, replace: bool = True) -> None:
    """Write a file whole; a private one is never readable by others, even for a moment."""
    target = path.with_name(path.name + ".new") if replace else path
    with contextlib.suppress(FileNotFoundError):
        if replace:
            target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if replace:
        os.replace(target, path)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
