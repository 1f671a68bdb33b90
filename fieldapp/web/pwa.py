"""What makes fieldapp an installable, offline-first app: the web app manifest, the service
worker (served at the root so its scope is the whole site), the offline page and the outbox page."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib.metadata import version
from pathlib import Path

from flask import Blueprint, Response, current_app, g, render_template, url_for
from flask_babel import get_translations, gettext

from fieldapp import PACKAGE_DIR, shipped_dir
from fieldapp.domain import roles
from fieldapp.web.access import allow
from fieldapp.web.main import asset_url

bp = Blueprint("pwa", __name__)

THEME = "#1f5f8b"
ICONS = [  # (file, sizes, purpose): Chromium asks for 192 and 512 pixels; Android masks "maskable"
    ("icons/icon-192.png", "192x192", "any"),
    ("icons/icon-512.png", "512x512", "any"),
    ("icons/maskable-512.png", "512x512", "maskable"),
    ("icons/icon.svg", "any", "any"),
]


@cache
def _static_files(static_dir: str) -> tuple[str, ...]:
    root = Path(static_dir)
    return tuple(sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                        if p.is_file() and not p.name.startswith(".")))


@cache
def _release(static_dir: str) -> str:
    """A digest of everything the service worker keeps: any change makes a new version."""
    digest = hashlib.sha256(version("fieldapp").encode())
    trees = [Path(static_dir), PACKAGE_DIR / "web" / "templates", shipped_dir("translations")]
    for tree in trees:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and path.suffix != ".po" and "__pycache__" not in path.parts:
                digest.update(path.relative_to(tree).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@bp.get("/sw.js")
@allow(public=True)
def service_worker():
    """static/js/sw.js, preceded by what it must know of this release."""
    static_dir = current_app.static_folder
    settings = {
        "version": _release(static_dir),
        "assets": [asset_url(f) for f in _static_files(static_dir) if f != "js/sw.js"],
        "languages": current_app.config["LANGUAGES"],
        "outbox": asset_url("js/outbox.js"),
    }
    source = (Path(static_dir) / "js" / "sw.js").read_text(encoding="utf-8")
    body = f"const SETTINGS = {json.dumps(settings)};\n{source}"
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # the browser checks for a new release each visit
    return response


@bp.get("/<lang>/manifest.webmanifest")
@allow(public=True)
def manifest():
    body = {
        "id": "/",
        "name": "fieldapp",
        "short_name": "fieldapp",
        "description": gettext("Migrant intake and training attendance, with or without a connection."),
        "lang": g.lang,
        "start_url": url_for("main.home"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [{"src": asset_url(f), "sizes": s, "purpose": p,
                   "type": "image/svg+xml" if f.endswith(".svg") else "image/png"}
                  for f, s, p in ICONS],
    }
    response = current_app.response_class(json.dumps(body, ensure_ascii=False),
                                          mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/<lang>/offline")
@allow(public=True)
def offline():
    """Shown by the service worker for a page it does not keep when the server cannot be reached."""
    return render_template("offline.html")


@bp.get("/<lang>/outbox")
@allow(*roles.RECORD_CAPTURERS)
def outbox():
    """The records waiting on this device; the page's script reads them from the browser."""
    return render_template("outbox.html")


def app_text() -> dict:
    """What the page scripts say, in the page's language (`n` is filled in by the script)."""
    # Plural forms unformatted, for the script to fill in `%(num)d` (English and Spanish have
    # two: one, other).
    catalog = get_translations()
    return {
        "waiting": [catalog.ngettext("Saved on this device — %(num)d waiting to send.",
                                     "Saved on this device — %(num)d waiting to send.", n)
                    for n in (1, 2)],
        "attention": [catalog.ngettext("%(num)d record needs attention.",
                                       "%(num)d records need attention.", n) for n in (1, 2)],
        "open_outbox": gettext("See what is waiting"),
        "login": gettext("Your session has ended. Log in again to send the records waiting on "
                         "this device; they are kept until then."),
        "log_in": gettext("Log in"),
        "offline_saved": gettext("Saved on this device. It will be sent as soon as the server can "
                                 "be reached."),
        "saved": gettext("Record saved."),
        "mark_waiting": gettext("Saved on this device; sent when the server is back."),
        "storage_unavailable": gettext(
            "This browser cannot keep records on this device (a private window, or storage is "
            "turned off). Keep the server reachable while you work."),
        "storage_full": gettext(
            "The device has no room left: this record was not saved on it. Send what is waiting "
            "or free some space, then save again."),
        "storage_evicted": gettext(
            "Records that were waiting on this device were deleted by the browser before they "
            "were sent. Tell your supervisor which records you entered today."),
        "storage_not_persistent": gettext(
            "This browser may delete records waiting here if the device runs short of space. "
            "Install fieldapp on the home screen so the browser keeps them, and send them soon."),
        "draft_restored": gettext("Answers you had not saved yet were restored."),
        "discard_draft": gettext("Discard them"),
        "discard_confirm": gettext("Discard this record? It has not reached the server and will "
                                   "be lost."),
        "sending": gettext("Sending…"),
        "sent": [catalog.ngettext("%(num)d record sent.", "%(num)d records sent.", n) for n in (1, 2)],
        "not_reached": gettext("The server cannot be reached. The records stay on this device "
                               "and are sent as soon as it can be."),
        "errors_heading": gettext("Please correct the following:"),
        "kinds": {"intake": gettext("Intake"), "participant": gettext("Participant registration"),
                  "mark": gettext("Attendance mark")},
        "states": {"waiting": gettext("Waiting to send"), "attention": gettext("Needs attention")},
        "correct": gettext("Correct"),
        "open_checkin": gettext("Open the check-in"),
    }
