"""Text normalisation for search keys: accent- and case-insensitive, punctuation-free."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^0-9a-z]+")
_NON_DOC = re.compile(r"[^0-9A-Z]+")


def fold(text: str) -> str:
    """Lowercase, strip accents and punctuation: `fold("María-José Núñez") == "maria jose nunez"`."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not _invisible(c))
    return _NON_WORD.sub(" ", stripped).strip()


def _invisible(c: str) -> bool:
    """Combining accents and format characters (zero-width space, soft hyphen): not separators."""
    return unicodedata.combining(c) or unicodedata.category(c) == "Cf"


def doc_key(number: str) -> str:
    """A document number without spaces or separators: `doc_key("ab-12 345") == "AB12345"`."""
    decomposed = unicodedata.normalize("NFKD", number.upper())
    return _NON_DOC.sub("", "".join(c for c in decomposed if not _invisible(c)))
