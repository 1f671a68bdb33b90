"""schemathesis against docs/sync-openapi.json, with a real central server on 127.0.0.1: whatever
the schema allows or almost allows, central answers as documented and never with a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.sync.harness import Central, enrolled_device

SPEC = Path(__file__).parent.parent.parent / "docs" / "sync-openapi.json"
schema = schemathesis.openapi.from_path(SPEC)


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    c = Central(tmp_path_factory.mktemp("central-schemathesis")).start()
    conn = c.db()
    token, _ = enrolled_device(conn)
    conn.close()
    try:
        yield c, token
    finally:
        c.stop()


@pytest.fixture(scope="module")
def http():
    with requests.Session() as s:
        s.trust_env = False  # no proxy from the environment between the test and 127.0.0.1
        yield s


@schema.parametrize()
@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck), database=None)
def test_the_sync_api_answers_as_documented(case, central, http):
    server, token = central
    case.call_and_validate(base_url=server.url, session=http,
                           headers={"Authorization": f"Bearer {token}"},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
