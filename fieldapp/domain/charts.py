"""Charts drawn on the server as SVG: no script, no style attribute, nothing fetched from elsewhere.

Pure functions that return the markup of one `<svg>` to embed in a page. The caller passes every
text already translated and every number already formatted (Babel): values only set lengths, and
axis labels come from the formatter the caller passes. Colours are SVG presentation attributes
(`fill=`), which a `style-src 'self'` policy allows; the page's stylesheet may restyle the classes.

Each chart is `role="img"` with an `aria-label`, a `<title>` and a `<desc>`; every bar has its own
`<title>` (a tooltip). The page shows the same figures in a table, for screen readers and for
copying. Every text is escaped for XML, so the markup stays well-formed whatever a label holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 720
FONT = 12  # px; the widths below assume about 0.6 em per character
CHAR = 7.2
# Okabe & Ito's palette: told apart by people with any common colour vision deficiency.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
BAR = "#1f5f8b"  # the app's brand colour, for charts of one series
TRACK, GRID, INK, MUTED = "#e1e6eb", "#c9d1d9", "#1b1f23", "#4f5a65"

# Characters XML 1.0 forbids even escaped (C0 controls but tab, newline and return; U+FFFE/FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Bar:
    """One bar: what it stands for, its length, and its value as the reader sees it."""

    label: str
    value: float
    text: str


@dataclass(frozen=True)
class Series:
    """One stacked series (a post): its name and, per category, a value and its text."""

    label: str
    values: Sequence[float]
    texts: Sequence[str]


def text(value: str) -> str:
    """`value` safe as XML character data or as a quoted attribute value."""
    return escape(_NOT_XML.sub("", str(value)), {'"': "&quot;", "'": "&#39;"})


def _n(x: float) -> str:
    """A coordinate: one decimal at most."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _clip(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[: max(1, chars - 1)].rstrip() + "…"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round axis steps from 0 to at least `top`: `nice_ticks(93) == [0, 20, 40, 60, 80, 100]`."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = max(1.0, next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough))
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def _open(chart_id: str, title: str, desc: str, width: float, height: float, kind: str) -> list[str]:
    cid = _ID.sub("", chart_id) or "chart"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" id="{cid}"'
        f' viewBox="0 0 {_n(width)} {_n(height)}" role="img" aria-label="{text(title)}"'
        f' aria-describedby="{cid}-desc" font-family="system-ui, sans-serif" font-size="{FONT}"'
        f' fill="{INK}">',
        f"<title>{text(title)}</title>",
        f'<desc id="{cid}-desc">{text(desc or title)}</desc>',
    ]


def _label(x: float, y: float, value: str, anchor: str = "start", cls: str = "chart-label",
           fill: str = INK) -> str:
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" class="{cls}"'
            f' fill="{fill}">{text(value)}</text>')


def horizontal_bars(chart_id: str, title: str, bars: Sequence[Bar], *, desc: str = "") -> str:
    """One bar per row, longest value widest, its value at its end (e.g. intakes by nationality)."""
    row, top_pad = 26, 8
    label_chars = min(30, max((len(b.label) for b in bars), default=1))
    left = label_chars * CHAR + 12
    right = max((len(b.text) for b in bars), default=1) * CHAR + 12
    span = max(WIDTH - left - right, 80)
    top = max((b.value for b in bars), default=0) or 1
    height = top_pad * 2 + row * max(len(bars), 1)
    out = _open(chart_id, title, desc, WIDTH, height, "hbar")
    for i, b in enumerate(bars):
        y = top_pad + i * row
        width = span * max(b.value, 0) / top
        out.append('<g class="chart-bar">')
        out.append(f"<title>{text(b.label)}: {text(b.text)}</title>")
        out.append(_label(left - 8, y + row / 2 + FONT / 3, _clip(b.label, label_chars), "end"))
        out.append(f'<rect x="{_n(left)}" y="{_n(y + 4)}" width="{_n(width)}"'
                   f' height="{_n(row - 8)}" fill="{BAR}" class="chart-fill"/>')
        out.append(_label(left + width + 6, y + row / 2 + FONT / 3, b.text, cls="chart-value"))
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def percentage_bars(chart_id: str, title: str, bars: Sequence[Bar],
                    percent: Callable[[float], str], *, desc: str = "") -> str:
    """Shares from 0 to 100 %, each bar on a full-width track (e.g. attendance per course).

    `value` is a fraction from 0 to 1; `percent` formats the axis (0.5 -> "50 %")."""
    row, top_pad, axis = 26, 8, 20
    label_chars = min(36, max((len(b.label) for b in bars), default=1))
    left = label_chars * CHAR + 12
    right = max([len(b.text) for b in bars] + [len(percent(1.0))]) * CHAR + 12
    span = max(WIDTH - left - right, 80)
    height = top_pad * 2 + row * max(len(bars), 1) + axis
    bottom = top_pad + row * max(len(bars), 1)
    out = _open(chart_id, title, desc, WIDTH, height, "pbar")
    for share in (0, 0.25, 0.5, 0.75, 1):
        x = left + span * share
        out.append(f'<line x1="{_n(x)}" y1="{top_pad}" x2="{_n(x)}" y2="{_n(bottom)}"'
                   f' stroke="{GRID}" class="chart-grid"/>')
        out.append(_label(x, bottom + axis - 4, percent(share), "middle", "chart-axis", MUTED))
    for i, b in enumerate(bars):
        y = top_pad + i * row
        width = span * min(max(b.value, 0), 1)
        out.append('<g class="chart-bar">')
        out.append(f"<title>{text(b.label)}: {text(b.text)}</title>")
        out.append(_label(left - 8, y + row / 2 + FONT / 3, _clip(b.label, label_chars), "end"))
        out.append(f'<rect x="{_n(left)}" y="{_n(y + 4)}" width="{_n(span)}" height="{_n(row - 8)}"'
                   f' fill="{TRACK}" class="chart-track"/>')
        out.append(f'<rect x="{_n(left)}" y="{_n(y + 4)}" width="{_n(width)}"'
                   f' height="{_n(row - 8)}" fill="{BAR}" class="chart-fill"/>')
        out.append(_label(left + span + 6, y + row / 2 + FONT / 3, b.text, cls="chart-value"))
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _legend(series: Sequence[Series], top: float) -> tuple[list[str], float]:
    """Swatches and names, wrapped into rows across the width; the markup and its height."""
    out, x, y, line = [], 0.0, top, 20
    for i, s in enumerate(series):
        width = 18 + min(len(s.label), 24) * CHAR + 16
        if x and x + width > WIDTH:
            x, y = 0.0, y + line
        out.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="12"'
                   f' fill="{PALETTE[i % len(PALETTE)]}" class="chart-s{i % len(PALETTE)}"/>')
        out.append(_label(x + 18, y + 11, _clip(s.label, 24)))
        x += width
    return out, (y - top + line if series else 0)


def stacked_columns(chart_id: str, title: str, categories: Sequence[str],
                    series: Sequence[Series], number: Callable[[float], str], *,
                    desc: str = "") -> str:
    """One column per category (a month), stacked by series (posts), with a legend above.

    `number` formats the vertical axis's values. Category labels are thinned out so they never
    overlap; each segment's tooltip names its category, series and value."""
    legend, legend_height = _legend(series, 0)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0))
    left = max(len(number(t)) for t in ticks) * CHAR + 10
    plot_top, plot_height, bottom_pad = legend_height + 10, 220, 24
    span = WIDTH - left - 4
    height = plot_top + plot_height + bottom_pad
    base = plot_top + plot_height
    out = _open(chart_id, title, desc, WIDTH, height, "columns") + legend
    for t in ticks:
        y = base - plot_height * t / ticks[-1]
        out.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(WIDTH)}" y2="{_n(y)}"'
                   f' stroke="{GRID}" class="chart-grid"/>')
        out.append(_label(left - 6, y + FONT / 3, number(t), "end", "chart-axis", MUTED))
    slot = span / max(len(categories), 1)
    bar = max(slot * 0.7, 1)
    longest = max((len(c) for c in categories), default=1) * CHAR + 8
    every = max(1, math.ceil(longest / slot))
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar) / 2
        y = base
        for j, s in enumerate(series):
            if s.values[i] <= 0:
                continue
            h = plot_height * s.values[i] / ticks[-1]
            y -= h
            colour = PALETTE[j % len(PALETTE)]
            out.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(h)}"'
                       f' fill="{colour}" class="chart-s{j % len(PALETTE)}">'
                       f"<title>{text(category)} · {text(s.label)}: {text(s.texts[i])}</title>"
                       "</rect>")
        if i % every == 0:  # centred under its column, but never past either edge
            half = len(category) * CHAR / 2
            centre = min(max(x + bar / 2, left + half), WIDTH - half)
            out.append(_label(centre, base + 16, category, "middle", "chart-axis", MUTED))
    out.append(f'<line x1="{_n(left)}" y1="{_n(base)}" x2="{_n(WIDTH)}" y2="{_n(base)}"'
               f' stroke="{MUTED}" class="chart-baseline"/>')
    out.append("</svg>")
    return "".join(out)
