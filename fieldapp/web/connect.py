"""Phones and tablets on the post's Wi-Fi: the local CA to install, and the laptop's HTTPS addresses."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import segno
from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext
from markupsafe import Markup

from fieldapp import tls
from fieldapp.domain import roles
from fieldapp.web.access import allow

bp = Blueprint("connect", __name__)

CA_FILENAME = "fieldapp-ca.crt"


@bp.get("/ca.crt")
@allow(public=True)
def ca_cert():
    der = tls.ca_der(current_app.instance_path)
    if der is None:
        abort(404)
    return der, 200, {"Content-Type": "application/x-x509-ca-cert",
                      "Content-Disposition": f'attachment; filename="{CA_FILENAME}"'}


def _lan_hosts(names: tuple[str, ...]) -> list[str]:
    """Names a phone can reach: IPv4 addresses first, then other IPs and name.local; no loopback."""
    ips = [ipaddress.ip_address(n) for n in names if tls.is_ip(n)]
    lan = sorted((ip for ip in ips if not ip.is_loopback), key=lambda ip: ip.version)
    return [str(ip) for ip in lan] + [n for n in names if n.endswith(".local")]


def _url(host: str, port: int, path: str = "/") -> str:
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}{'' if port == 443 else f':{port}'}{path}"


def _qr(url: str, title: str) -> Markup:
    """A QR code as inline SVG (no request leaves the laptop; no inline style)."""
    svg = segno.make(url, error="m").svg_inline(light="#fff", title=title, omitsize=True,
                                                svgclass="qr-code")
    return Markup(svg)  # segno escapes the title; the rest is path data


@bp.get("/<lang>/connect")
@allow(*roles.DEVICE_SETUP)
def index():
    files = tls.files(current_app.instance_path)
    hosts = _lan_hosts(files.names) if files else []
    here = urlsplit(request.host_url)
    port = (here.port or 443) if request.is_secure else tls.DEFAULT_PORT
    # The address this page was opened at, if a phone can use it; else the laptop's first LAN address.
    if request.is_secure and here.hostname in hosts:
        hosts.remove(here.hostname)
        hosts.insert(0, here.hostname)
    context = {"files": files, "secure": request.is_secure, "ca_filename": CA_FILENAME,
               "urls": [_url(h, port) for h in hosts]}
    if hosts:
        context["ca_url"], context["app_url"] = _url(hosts[0], port, "/ca.crt"), _url(hosts[0], port)
        context["ca_qr"] = _qr(context["ca_url"], gettext("QR code: certificate download"))
        context["app_qr"] = _qr(context["app_url"], gettext("QR code: address of the app"))
    return render_template("connect.html", **context)
