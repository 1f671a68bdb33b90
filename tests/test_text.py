"""Search folding: the fast paths of `fold` give what the plain definition gives."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp.domain.text import _NON_DOC, _NON_WORD, _invisible, doc_key, fold


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


def reference_doc_key(number: str) -> str:
    """The definition: uppercase, decompose, drop combining marks and format characters, then
    anything but A-Z and 0-9."""
    decomposed = unicodedata.normalize("NFKD", number.upper())
    return _NON_DOC.sub("", "".join(c for c in decomposed if not _invisible(c)))


@pytest.mark.parametrize(("number", "key"), [
    ("ab-12 345", "AB12345"), ("  x/9.9 ", "X99"), ("Ñ-12", "N12"), ("12\u00ad34", "1234"), ("", ""),
])
def test_doc_key(number, key):
    assert doc_key(number) == key == reference_doc_key(number)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=127))))
def test_doc_key_agrees_with_its_definition_on_any_text(number):
    assert doc_key(number) == reference_doc_key(number)
