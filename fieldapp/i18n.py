"""Flask-Babel wiring. The locale is the first part of the URL (/en/…, /es/…) and is remembered."""

from __future__ import annotations

import os
from functools import cache
from urllib.parse import urlencode

from babel import Locale, support
from flask import Flask, abort, current_app, g, request
from flask_babel import Babel

from fieldapp import shipped_dir

COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def _locale() -> str:
    return g.get("lang") or current_app.config["BABEL_DEFAULT_LOCALE"]


def preferred_language() -> str:
    """The remembered choice, else the browser's preference, else the default."""
    languages = current_app.config["LANGUAGES"]
    remembered = request.cookies.get(COOKIE)
    if remembered in languages:
        return remembered
    return request.accept_languages.best_match(languages) or languages[0]


def swap_language(path: str, lang: str) -> str:
    """The same page in another language: `swap_language("/en/records?q=x", "es") == "/es/records?q=x"`."""
    parts = path.split("/", 2)
    if len(parts) >= 2 and parts[0] == "" and parts[1] in current_app.config["LANGUAGES"]:
        parts[1] = lang
        return "/".join(parts)
    return path


def language_switch_url(lang: str) -> str:
    """This page in `lang`, with a `next` target switched too (the login page carries one)."""
    path = swap_language(request.path, lang)
    args = request.args.to_dict()
    if "next" in args:
        args["next"] = swap_language(args["next"], lang)
    query = urlencode(args)
    return f"{path}?{query}" if query else path


def other_languages() -> list[tuple[str, str]]:
    """(code, name in that language) of every language but the page's: [("es", "español")]."""
    return [
        (code, Locale.parse(code).display_name.capitalize())
        for code in current_app.config["LANGUAGES"] if code != g.get("lang")
    ]


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(shipped_dir("translations"))
    Babel(app, locale_selector=_locale)

    @app.url_value_preprocessor
    def pull_lang(endpoint, values):
        if values and "lang" in values:
            lang = values.pop("lang")
            if lang not in app.config["LANGUAGES"]:
                abort(404)
            g.lang = lang

    @app.url_defaults
    def add_lang(endpoint, values):
        if "lang" not in values and app.url_map.is_endpoint_expecting(endpoint, "lang"):
            values["lang"] = g.get("lang") or preferred_language()

    app.jinja_env.globals.update(
        language_switch_url=language_switch_url, other_languages=other_languages
    )

    @app.after_request
    def remember_lang(response):
        lang = g.get("lang")
        if lang and request.cookies.get(COOKIE) != lang:
            response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True)
        return response


def cli_language() -> str:
    """The terminal's language if fieldapp speaks it, else English."""
    for var in ("FIELDAPP_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            lang = value.split(".")[0].split("_")[0].lower()
            return lang if lang in ("en", "es") else "en"
    return "en"


@cache
def _cli_translations():
    """The catalog for the terminal's language ($FIELDAPP_LANG, else $LC_ALL, $LC_MESSAGES, $LANG)."""
    for var in ("FIELDAPP_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            lang = value.split(".")[0].split("_")[0].lower()
            return support.Translations.load(str(shipped_dir("translations")), [lang])
    return support.NullTranslations()


def cli_gettext(message: str, **params) -> str:
    """Translate a command-line message: `cli_gettext("Created %(name)s", name="ana")`."""
    text = _cli_translations().gettext(message)
    return text % params if params else text
