"""Bad input in the intake form: a clear message in the user's language, input kept, nothing stored."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest
from flask_babel import force_locale

from fieldapp.forms import schema
from fieldapp.forms.messages import message
from fieldapp.forms.validate import Error, validate
from fieldapp.storage import records
from tests.conftest import csrf_token, valid_intake

TOMORROW = (date.today() + timedelta(days=1)).isoformat()
TODAY = date.today()

# (case, overrides of a valid intake, field that must carry the error, expected error)
BAD_INPUTS = [
    ("missing required answer", {"given_names": ""}, "given_names", Error("required")),
    ("missing multichoice", {"migration_reasons": None}, "migration_reasons", Error("required")),
    ("interview in the future", {"interview_date": TOMORROW}, "interview_date",
     Error("date_in_future")),
    ("birth before 1900", {"birth_date": "1899-12-31"}, "birth_date",
     Error("date_too_early", {"min": "1900-01-01"})),
    ("birth after interview", {"birth_date": date.today().isoformat(),
                               "interview_date": (TODAY - timedelta(days=3)).isoformat(),
                               "arrival_date": None},
     "birth_date", Error("date_after_other", {"other": "Interview date"})),
    ("not a date", {"birth_date": "04/05/1990"}, "birth_date", Error("invalid_date")),
    ("impossible date", {"birth_date": "1990-02-30"}, "birth_date", Error("invalid_date")),
    ("malformed phone", {"phone": "300-CALL-ME"}, "phone", Error("invalid_phone")),
    ("phone without country code", {"phone": "3001234567"}, "phone", Error("invalid_phone")),
    ("document number with a control character", {"doc_number": "AB\x00123"}, "doc_number",
     Error("control_characters")),
    ("document number with an escape sequence", {"doc_number": "AB\x1b[31m1"}, "doc_number",
     Error("control_characters")),
    ("document number with a line break", {"doc_number": "AB\n123"}, "doc_number",
     Error("control_characters")),
    ("document number with symbols", {"doc_number": "AB<123>"}, "doc_number",
     Error("invalid_format")),
    ("document number missing", {"doc_number": ""}, "doc_number", Error("required")),
    ("unknown choice code", {"sex": "alien"}, "sex", Error("unknown_choice")),
    ("unknown multichoice code", {"migration_reasons": ["economic", "x"]}, "migration_reasons",
     Error("unknown_choice")),
    ("'none' combined with a need", {"specific_needs": ["none", "disability"]}, "specific_needs",
     Error("exclusive_choice")),
    ("unknown country code", {"nationality": "XY"}, "nationality", Error("unknown_country")),
    ("lowercase country code", {"nationality": "ve"}, "nationality", Error("unknown_country")),
    ("text over the length limit", {"given_names": "A" * 101}, "given_names",
     Error("too_long", {"max": 100})),
    ("notes over the length limit", {"notes": "x" * 1001}, "notes",
     Error("too_long", {"max": 1000})),
    ("not a number", {"accompanying_adults": "two"}, "accompanying_adults", Error("not_integer")),
    ("negative number", {"accompanying_minors": "-1"}, "accompanying_minors",
     Error("too_small", {"min": 0})),
    ("age over the limit", {"birth_date_known": "no", "birth_date": None, "estimated_age": "130"},
     "estimated_age", Error("too_large", {"max": 120})),
    ("no age when the birth date is unknown", {"birth_date_known": "no", "birth_date": None},
     "estimated_age", Error("required")),
    ("arrival before birth", {"arrival_date": "1980-01-01"}, "arrival_date",
     Error("date_before_other", {"other": "Date of birth"})),
    ("reason missing when consent is not possible", {"consent": "not_possible"}, "consent_reason",
     Error("required")),
]


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize(("case", "overrides", "field", "error"), BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_in_the_users_language(
    app, db, client_as, lang, case, overrides, field, error
):
    officer = client_as("officer")
    data = valid_intake(**overrides)
    response = officer.post_form(f"/{lang}/intake/new", data)

    assert response.status_code == 422
    page = response.text
    assert 'id="error-summary"' in page
    with app.test_request_context(f"/{lang}/"), force_locale(lang):
        expected = message(error)
    assert f'<p class="error" id="e-{field}">{html.escape(expected, quote=False)}</p>' in page
    assert f'lang="{lang}"' in page
    # What the officer typed is still there.
    kept = data["first_surname"]
    assert f'value="{html.escape(kept)}"' in page
    assert records.count(db, "intake", None) == 0


def test_spanish_messages_are_translated(app):
    with app.test_request_context("/es/"), force_locale("es"):
        spanish = message(Error("required"))
    with app.test_request_context("/en/"), force_locale("en"):
        english = message(Error("required"))
    assert spanish != english


@pytest.mark.parametrize(
    "tamper",
    [{"uuid": "not-a-uuid"}, {"uuid": ""}, {"form_version": "99"}, {"base_revision": "x"},
     {"base_revision": "-1"}],
    ids=["bad uuid", "no uuid", "unknown version", "bad base", "negative base"],
)
def test_tampered_hidden_fields_store_nothing(db, client_as, tamper):
    response = client_as("officer").post_form("/en/intake/new", valid_intake(**tamper))
    assert response.status_code == 422
    assert "The form was altered" in response.text
    assert records.count(db, "intake", None) == 0


def test_edit_of_a_record_never_stored_is_refused(db, client_as):
    response = client_as("officer").post_form("/en/intake/new", valid_intake(base_revision="3"))
    assert response.status_code == 422
    assert records.count(db, "intake", None) == 0


def test_missing_csrf_token_is_refused(app, db, client_as):
    officer = client_as("officer")
    response = officer.http.post("/en/intake/new", data=valid_intake())
    assert response.status_code == 400
    assert "expired" in response.text
    assert records.count(db, "intake", None) == 0


# The validator alone: relevance and the anonymous minimum.
INTAKE = schema.get("intake")


def test_refused_consent_keeps_only_the_anonymous_minimum():
    raw = valid_intake(consent="refused", age_group="25_59")
    result = validate(INTAKE, raw, TODAY)
    assert result.ok, result.errors
    assert set(result.answers) == {
        "consent", "purpose", "interview_date", "sex", "age_group", "nationality",
    }


def test_refused_consent_requires_the_anonymous_fields():
    result = validate(INTAKE, {"consent": "refused", "purpose": "statistics",
                               "interview_date": TODAY.isoformat()}, TODAY)
    assert {k: e.code for k, e in result.errors.items()} == {
        "sex": "required", "age_group": "required", "nationality": "required",
    }


def test_no_document_needs_no_number():
    raw = valid_intake(doc_type="none", doc_number="", doc_country="")
    result = validate(INTAKE, raw, TODAY)
    assert result.ok, result.errors
    assert "doc_number" not in result.answers and "doc_country" not in result.answers


@pytest.mark.parametrize(("typed", "stored"), [
    ("+57 300 123 4567", "+573001234567"),
    ("+1 (809) 555-0100", "+18095550100"),
    ("+509.3456.7890", "+50934567890"),
])
def test_phone_numbers_are_stored_in_international_format(typed, stored):
    result = validate(INTAKE, valid_intake(phone=typed), TODAY)
    assert result.answers["phone"] == stored


def test_answers_are_codes_not_labels():
    result = validate(INTAKE, valid_intake(), TODAY)
    assert result.answers["sex"] == "female"
    assert result.answers["nationality"] == "VE"
    assert result.answers["accompanying_minors"] == 2
    assert result.answers["interview_date"] == (TODAY - timedelta(days=1)).isoformat()


# Requests no browser sends: each is refused with a 4xx, never a 500, and stores nothing.
@pytest.mark.parametrize(("overrides", "status"), [
    ({"base_revision": "²"}, 422),
    ({"base_revision": "9" * 5000}, 422),
    ({"form_version": "9" * 5000}, 422),
    ({"uuid": "x" * 10000}, 422),
])
def test_odd_hidden_values_are_refused(db, client_as, overrides, status):
    response = client_as("officer").post_form("/en/intake/new", valid_intake(**overrides))
    assert response.status_code == status
    assert records.count(db, "intake", None) == 0


def test_an_answer_sent_as_a_file_is_not_stored(app, db, client_as):
    import io

    officer = client_as("officer")
    page = officer.get("/en/intake/new")
    data = {**valid_intake(), "csrf_token": csrf_token(page.text)}
    data["given_names"] = (io.BytesIO(b"Ana"), "a.txt")
    response = officer.http.post("/en/intake/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert records.count(db, "intake", None) == 0


def test_login_with_a_file_for_a_username_is_refused(client_as):
    import io

    client = client_as()
    page = client.get("/en/login")
    response = client.http.post("/en/login", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(page.text), "username": (io.BytesIO(b"officer"), "u.txt"),
        "password": "x"})
    assert response.status_code == 401


@pytest.mark.parametrize("before", ["99999999999999999999", "-99999999999999999999", "0", "x"])
def test_odd_paging_values_are_ignored(client_as, before):
    assert client_as("officer").get(f"/en/records?before={before}").status_code == 200


@pytest.mark.parametrize("user_id", ["99999999999999999999", "-1", "0"])
def test_odd_account_ids_are_not_found(client_as, user_id):
    assert client_as("admin").get(f"/en/admin/users/{user_id}").status_code == 404


@pytest.mark.parametrize("name", ["Ma\u202eria", "Ana\u2028Luz", "Ana\u2066x\u2069"])
def test_text_that_reorders_or_breaks_lines_is_refused(name):
    result = validate(INTAKE, valid_intake(given_names=name), TODAY)
    assert result.errors["given_names"].code == "control_characters"


def test_invisible_characters_do_not_hide_a_record_from_search(db, client_as):
    officer = client_as("officer")
    officer.post_form("/en/intake/new", valid_intake(given_names="Ma\u200bría",
                                                     first_surname="Gar\u00adcía"))
    page = officer.get("/en/records?q=maria garcia").text
    assert "Ma\u200bría" in page


def test_line_breaks_count_as_one_character():
    notes = ("x" * 99 + "\r\n") * 10  # 1,000 characters as the browser counts them
    result = validate(INTAKE, valid_intake(notes=notes), TODAY)
    assert result.ok, result.errors
    assert "\r" not in result.answers["notes"]
