"""Country codes (ISO 3166-1 alpha-2) and their names from Babel's locale data."""

from __future__ import annotations

from functools import cache

from babel import Locale

from fieldapp.domain.text import fold

# CLDR territories that are not ISO 3166-1 countries (groupings, pseudo-locales, exceptionally
# reserved codes such as IC Canary Islands), left out of country lists. XK (Kosovo) stays.
_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}


@cache
def codes() -> frozenset[str]:
    territories = Locale("en").territories
    return frozenset(
        c for c in territories if len(c) == 2 and c.isalpha() and c.isupper() and c not in _NOT_COUNTRIES
    )


@cache
def names(locale: str) -> tuple[tuple[str, str], ...]:
    """(code, name) pairs sorted by name in `locale`: `dict(names("es"))["DE"] == "Alemania"`."""
    territories = Locale.parse(locale).territories
    pairs = [(c, territories.get(c, c)) for c in codes()]
    return tuple(sorted(pairs, key=lambda pair: fold(pair[1])))


def name(code: str, locale: str) -> str:
    return Locale.parse(locale).territories.get(code, code)
