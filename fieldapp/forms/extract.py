"""Babel extractor for form definitions: titles, labels, hints and choice labels are msgids."""

from __future__ import annotations

import tomllib

_TEXT_KEYS = ("title", "label", "hint")


def extract_definition(fileobj, keywords, comment_tags, options):
    """Yield (lineno, funcname, message, comments) for every translatable string in a definition."""
    raw = fileobj.read()
    data = tomllib.loads(raw.decode("utf-8"))
    lines = raw.decode("utf-8").splitlines()

    def lineno(text: str) -> int:
        needle = text.replace("\\", "\\\\")[:40]
        return next((i + 1 for i, line in enumerate(lines) if needle in line), 0)

    strings = [data["title"]]
    for section in data["sections"]:
        strings += [section[k] for k in _TEXT_KEYS if section.get(k)]
        for field in section["fields"]:
            strings += [field[k] for k in _TEXT_KEYS if field.get(k)]
    for entries in data.get("lists", {}).values():
        strings += [label for label in entries.values() if label]
    for text in dict.fromkeys(strings):  # unique, in order
        yield lineno(text), "gettext", text, []
