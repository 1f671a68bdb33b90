"""Render the app icons (static/icons/*.png) from icon.svg with Debian's Chromium.

    .venv/bin/python docs/icons.py

PNG sizes are those browsers ask of an installable app (192 and 512 pixels), plus a "maskable"
one whose artwork sits inside the safe zone Android crops to a circle or a squircle.
"""

import base64
from pathlib import Path

from playwright.sync_api import sync_playwright

ICONS = Path(__file__).resolve().parent.parent / "static" / "icons"
GLYPH = '<path d="M150 120h212v48H206v68h136v48H206v108h-56z" fill="#fff"/>'
MASKABLE = (  # full-bleed background; the glyph shrunk to 70 % around the centre
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512"><rect width="512" height="512" '
    f'fill="#1f5f8b"/><g transform="translate(76.8 76.8) scale(.7)">{GLYPH}</g></svg>'
)


def render(page, svg: str, size: int, target: Path) -> None:
    page.set_viewport_size({"width": size, "height": size})
    data = base64.b64encode(svg.encode()).decode()
    page.set_content(f'<html><body style="margin:0"><img src="data:image/svg+xml;base64,{data}" '
                     f'width="{size}" height="{size}" style="display:block"></body></html>')
    page.screenshot(path=str(target), omit_background=True)


def main() -> None:
    svg = (ICONS / "icon.svg").read_text()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        render(page, svg, 192, ICONS / "icon-192.png")
        render(page, svg, 512, ICONS / "icon-512.png")
        render(page, MASKABLE, 512, ICONS / "maskable-512.png")
        browser.close()


if __name__ == "__main__":
    main()
