"""Search folding: the fast paths of `fold` give what the plain definition gives."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.domain.text import _NON_WORD, _invisible, doc_key, fold


def reference_fold(text: str) -> str:
    """The definition: casefold, decompose, drop combining marks and format characters, then
    every run of anything but a-z and 0-9 is one space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _NON_WORD.sub(" ", "".join(c for c in decomposed if not _invisible(c))).strip()


@pytest.mark.parametrize(("text", "folded"), [
    ("María-José Núñez", "maria jose nunez"),
    ("  PÉREZ  y  Gómez ", "perez y gomez"),
    ("Jean\u00adBaptiste", "jeanbaptiste"),  # a soft hyphen joins
    ("zero\u200bwidth", "zerowidth"),
    ("Straße", "strasse"),
    ("O'Brien", "o brien"),
    ("ﬁne", "fine"),  # a ligature decomposes
    ("Ñandú 2", "nandu 2"),
    ("", ""),
])
def test_fold(text, folded):
    assert fold(text) == folded == reference_fold(text)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_fold_agrees_with_its_definition_on_any_text(text):
    assert fold(text) == reference_fold(text)


def test_doc_key():
    assert doc_key("ab-12 345") == "AB12345"
