"""One place that turns errors into pages: translated, no traceback, no personal data."""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

TITLES = {
    400: lazy_gettext("The request could not be understood"),
    401: lazy_gettext("Please log in"),
    403: lazy_gettext("You do not have access to this page"),
    404: lazy_gettext("Page not found"),
    405: lazy_gettext("This action is not allowed here"),
    409: lazy_gettext("This cannot be done now"),
    413: lazy_gettext("What was sent is too large"),
    500: lazy_gettext("Something went wrong on the server"),
}
DETAILS = {
    400: lazy_gettext("Go back, reload the page and try again."),
    401: lazy_gettext("Your session has ended. Log in again to continue."),
    403: lazy_gettext("Your account's role does not allow this. Ask your supervisor if you need it."),
    404: lazy_gettext("Check the address, or go back to the home page."),
    405: lazy_gettext("Go back and use the buttons on the page."),
    409: lazy_gettext("The page is out of date, or something it needs is not set up yet. Go back "
                      "and reload the page."),
    413: lazy_gettext("Shorten what you typed and try again."),
    500: lazy_gettext("Nothing was saved by the action that failed. Try again; if it happens "
                      "again, tell your supervisor the time it happened."),
}


CODES = {400: "bad_request", 401: "login", 403: "forbidden", 404: "not_found", 405: "method",
         409: "conflict", 413: "too_large", 500: "server_error"}


def json_error(status: int, code: str, message: str):
    """The one JSON shape of a refused request: `{"ok": false, "error": {"code", "message"}}`."""
    return jsonify({"ok": False, "error": {"code": code, "message": str(message)}}), status


def render_error(status: int, detail=None, code: str | None = None):
    """The error page, or for the JSON API `{"ok": false, "error": {"code", "message"}}`."""
    status = status if status in TITLES else 400 if status < 500 else 500
    if request.blueprint in ("api", "sync"):
        return json_error(status, code or CODES[status], f"{TITLES[status]}. {detail or DETAILS[status]}")
    body = render_template(
        "error.html", status=status, title=TITLES[status], detail=detail or DETAILS[status]
    )
    return body, status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_error(400, lazy_gettext(
            "This form has expired or was not sent by this application. Go back, reload the page "
            "and save again."
        ), code="csrf")

    @app.errorhandler(HTTPException)
    def http_error(e):
        return render_error(e.code or 500)

    @app.errorhandler(Exception)
    def unexpected(e):
        # Log the type, the route and the code path, never the message: it can hold personal data.
        frames = "".join(traceback.format_tb(e.__traceback__))
        log.error("unhandled %s on %s %s\n%s", type(e).__name__, request.method, request.url_rule,
                  frames)
        try:
            return render_error(InternalServerError.code)
        except Exception as again:  # the error page itself failed (database gone, template broken)
            log.error("the error page failed too: %s", type(again).__name__)
            text = f"{TITLES[500]}. {DETAILS[500]}"
            return Response(text, 500, mimetype="text/plain")
