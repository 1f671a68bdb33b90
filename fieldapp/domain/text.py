"""Text normalisation for search keys: accent- and case-insensitive, punctuation-free."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^0-9a-z]+")
_NON_DOC = re.compile(r"[^0-9A-Z]+")


def fold(text: str) -> str:
    """Lowercase, strip accents and punctuation: `fold("María-José Núñez") == "maria jose nunez"`."""
    if text.isascii():  # most names: nothing to decompose (sync stores one fold per record)
        return _NON_WORD.sub(" ", text.lower()).strip()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _NON_WORD.sub(" ", decomposed.translate(_DROP_INVISIBLE)).strip()


def _invisible(c: str) -> bool:
    """Combining accents and format characters (zero-width space, soft hyphen): not separators."""
    return unicodedata.combining(c) or unicodedata.category(c) == "Cf"


class _Invisible(dict):
    """For str.translate: code point -> None (dropped) if invisible, else itself; learnt once each."""

    def __missing__(self, code: int):
        self[code] = None if _invisible(chr(code)) else code
        return self[code]


_DROP_INVISIBLE = _Invisible()


def doc_key(number: str) -> str:
    """A document number without spaces or separators: `doc_key("ab-12 345") == "AB12345"`."""
    if number.isascii():  # nothing to decompose, nothing invisible
        return _NON_DOC.sub("", number.upper())
    decomposed = unicodedata.normalize("NFKD", number.upper())
    return _NON_DOC.sub("", decomposed.translate(_DROP_INVISIBLE))
