"""What a person reads when a sync stops, for the codes the field side raises itself (central's
refusals arrive with their own message, in the language asked for)."""

from __future__ import annotations

from collections.abc import Callable


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where it is shown."""
    return message


ERRORS = {
    "not_enrolled": N_("This field server is not enrolled at a central server yet. Enter the "
                       "central server's address and the enrolment code from the central office."),
    "unreachable": N_("The central server could not be reached, even after several tries. Check "
                      "the internet connection and the central server's address, then sync again: "
                      "nothing is lost, the sync continues where it stopped."),
    "tls": N_("The central server's certificate could not be verified. Check the address; if the "
              "central office uses its own certificate authority, set SYNC_CA_BUNDLE."),
    "server": N_("The central server had a problem (HTTP %(status)s), even after several tries. "
                 "Sync again later: nothing is lost."),
    "bad_answer": N_("The central server's answer was not understood. Sync again; if it happens "
                     "again, tell the central office."),
    "busy": N_("Another sync of this field server is running. Wait for it to finish."),
    "post_mismatch": N_("The central server enrolled this device for another post."),
    "refused": N_("The central server refused the request (HTTP %(status)s)."),
    "newer_forms": N_("The central server sent records of a form version this field server does not "
                      "know. Upgrade fieldapp on this laptop, then sync again: nothing is lost."),
    "nothing_pending": N_("Nothing is waiting to be sent: there is no sync file to make."),
    "bad_bundle": N_("This file is not a fieldapp sync file, or it is damaged."),
    "bad_signature": N_("This file's signature does not match: it was altered, or it was made for "
                        "another device. Nothing was imported."),
    "other_device": N_("This file belongs to another device or post. Nothing was imported."),
}


def error_text(code: str, message: str, status: int, gettext: Callable[[str], str]) -> str:
    """A sync error as a sentence: central's own message, else ours for the code."""
    if message:
        return message
    return gettext(ERRORS.get(code, ERRORS["refused"])) % {"status": status}
