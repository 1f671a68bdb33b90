"""Hypothesis strategies for hostile input: strings of every shape, JSON of every shape, and
mutations of a valid submission (a field dropped, retyped, oversized, or added)."""

from __future__ import annotations

from hypothesis import strategies as st

# Text that a form or a JSON body may carry: ordinary, control characters, lone surrogates
# (in JSON), right-to-left marks, very long, number- and date-like edge cases.
EDGE = ["", " ", "0", "-1", "1e309", "NaN", "Infinity", "9" * 40, "2026-02-30", "0000-00-00",
        "9999-12-31", "<script>alert(1)</script>", "\x00", "\u202e", "ñ" * 300, "💥" * 100,
        "' OR 1=1 --", "%s%(x)s{0}", "../../etc/passwd", "\r\n", "true", "[]", "{}"]
TEXT = st.one_of(
    st.sampled_from(EDGE),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000),
    st.integers().map(str),
)
FORM_VALUE = st.one_of(TEXT, st.lists(TEXT, max_size=5))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=30), st.sampled_from(EDGE))
JSON = st.recursive(JSON_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
# Raw bytes in a urlencoded body: invalid UTF-8, encoded surrogates, overlong forms.
BAD_BYTES = st.sampled_from([b"%FF%FE", b"%ED%A0%80", b"%C0%AF", b"%E2%82", b"\xff\xfe", b"%00",
                             b"%F4%90%80%80"])


@st.composite
def mutated(draw, valid: dict, *, keep: frozenset = frozenset()) -> dict:
    """`valid` with a few of its fields dropped, replaced or added: fields in `keep` stay."""
    data = dict(valid)
    names = sorted(k for k in data if k not in keep)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if action == "add" or not names:
            data[draw(st.text(min_size=1, max_size=20))] = draw(FORM_VALUE)
            continue
        name = draw(st.sampled_from(names))
        if action == "drop":
            data.pop(name, None)
        else:
            data[name] = draw(FORM_VALUE)
    return data
