"""What every answer and every request must respect, whatever the view: security headers on each
response, a same-origin check on each state-changing request, and body limits set before anything
reads the body.

The pages send no Referer anywhere (`Referrer-Policy: no-referrer`): an address can hold a search
for a person's name. Flask-WTF's strict HTTPS check needs that Referer, so it is off
(WTF_CSRF_SSL_STRICT) and this module checks where a form came from instead, with the headers
browsers send for that purpose: `Sec-Fetch-Site`, else `Origin`. The CSRF token stays the main
defence; this check adds what the Referer check gave over HTTPS, on HTTP as well.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFError

CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Sec-Fetch-Site values of a request this site's own pages made, or a person typed.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def body_limit(config_key: str):
    """Let a view accept a larger body than MAX_CONTENT_LENGTH: `@body_limit("SYNC_MAX_BUNDLE")`.

    Applied before the CSRF check reads the form, so the view's own limit is the one that counts.
    """

    def mark(view):
        view.body_limit = config_key
        return view

    return mark


def _same_origin(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme, parts.netloc.lower()) == (request.scheme, request.host.lower())


def cross_site() -> bool:
    """Whether a browser says this request was made by a page of another site."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in SAME_SITE_FETCH
    # Older browsers: Origin, when they send one. Under no-referrer a same-origin form says
    # "null", which tells nothing: the CSRF token decides.
    origin = request.headers.get("Origin")
    return bool(origin) and origin != "null" and not _same_origin(origin)


def init_app(app: Flask) -> None:
    def before_anything():
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        key = getattr(view, "body_limit", None)
        if key:
            request.max_content_length = current_app.config[key]
        if request.method not in SAFE_METHODS and cross_site():
            raise CSRFError("cross-site request")

    # First of all: before Flask-WTF's CSRF check reads the form with the default limit.
    app.before_request_funcs.setdefault(None, []).insert(0, before_anything)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        age = current_app.config["HSTS_MAX_AGE"]
        # Not for "localhost": HSTS covers every port of a host, and the laptop's own browser may
        # use plain http://localhost:5000 beside https://localhost:8443.
        if request.is_secure and age and request.host.split(":")[0] != "localhost":
            headers.setdefault("Strict-Transport-Security", f"max-age={int(age)}")
        if request.endpoint == "static":
            if request.args.get("v"):  # a versioned URL (main.asset_url) never changes content
                headers["Cache-Control"] = "public, max-age=31536000, immutable"
        elif "Cache-Control" not in headers:
            # Pages can hold personal data: no browser or proxy may keep a copy.
            headers["Cache-Control"] = "no-store"
        return response
