"""Screenshots of the new-intake form on a phone and a laptop, in English and Spanish.

Run from the repository: `.venv/bin/python docs/screenshots.py`. It sets up a throwaway instance,
serves it, logs in as an officer in Debian's Chromium, fills the first questions and writes
docs/screenshots/intake-{phone,laptop}-{en,es}.png (viewport only, to keep them small).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots"
sys.path.insert(0, str(REPO))

from tests.browser.conftest import (  # noqa: E402
    LAPTOP,
    PHONE,
    chromium_missing_reason,
    launch_chromium,
    log_in,
    running_server,
)

DEVICES = {"phone": PHONE, "laptop": LAPTOP}
LANGUAGES = {"en": "en-US", "es": "es-ES"}


def fill_first_questions(page) -> None:
    page.locator("#record-form input[name='consent'][value='given']").check()
    page.select_option("#f-purpose", "assistance")
    page.fill("#f-given_names", "Ángela Sofía")
    page.fill("#f-first_surname", "Pérez")
    page.fill("#f-second_surname", "Núñez")
    page.locator("#record-form input[name='sex'][value='female']").check()
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")


def main() -> int:
    reason = chromium_missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    from playwright.sync_api import expect, sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="fieldapp-shots-") as tmp, \
            running_server(Path(tmp) / "instance") as server, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for device_name, device in DEVICES.items():
                for lang, locale in LANGUAGES.items():
                    context = browser.new_context(locale=locale, **device)
                    page = context.new_page()
                    log_in(page, server, lang)
                    page.goto(f"{server.url}/{lang}/intake/new")
                    expect(page.locator("html")).to_have_attribute("lang", lang)
                    fill_first_questions(page)
                    path = OUT / f"intake-{device_name}-{lang}.png"
                    page.screenshot(path=str(path), full_page=False)
                    written.append(path)
                    context.close()
        finally:
            browser.close()
    for path in written:
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
