"""Schemathesis against the service's own OpenAPI schema: no 5xx, no schema violations.

Every operation is called with generated (valid and invalid) input as an admin, and each
response is checked against what the schema promises: status codes, content types,
headers and bodies. OWASP API8 (security misconfiguration) and API4 both begin here.
The negative pass (issue 10 §4) sends only input the schema forbids, on both database
engines (PostgreSQL refuses some text SQLite stores), and wants a 4xx for every one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from api.app import create_app
from api.auth import create_token
from ledger.service import Ledger
from tests.conftest import make_event


def test_api_conforms_to_its_schema(tmp_path: Path) -> None:
    lg = Ledger.open(tmp_path / "data", None, "schema.example/log")
    try:
        _, token = create_token(lg.store, "admin")
        app = create_app(lg, rate_limit=0, auth_failure_rate=0)
        auth = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as c:  # some history, so that reads find something
            evs = {"events": [make_event() for _ in range(5)]}
            c.post("/v1/events:batch", json=evs, headers=auth).raise_for_status()
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            # The test sends an admin's token itself: no Authorization values are
            # generated from the bearer scheme (a negative case dropping the header would
            # be sent with the token all the same, and accepted).
            schema.config.generation.update(with_security_parameters=False)
            operations = [r.ok() for r in schema.get_all_operations()]
            assert len(operations) >= 10
            for op in operations:

                @settings(
                    max_examples=20,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=op.as_strategy())
                def check(case: Any) -> None:
                    # Positive-data acceptance is left out: whether a schema-valid event
                    # is accepted also depends on the catalogue (which types go with which
                    # trade type) and on storage (attachments must exist).
                    case.call_and_validate(
                        headers=auth, excluded_checks=[schemathesis.checks.positive_data_acceptance]
                    )

                check()
    finally:
        lg.close()


#: Examples per operation in the negative pass (about 25 operations; ~20 s per engine);
#: JIANZHENG_FUZZ_SCALE multiplies them for a longer run (docs/testing.md).
NEGATIVE_EXAMPLES = 25 * max(1, int(os.environ.get("JIANZHENG_FUZZ_SCALE", "1")))


def test_invalid_input_is_refused_with_a_4xx(tmp_path: Path, db_url: str) -> None:
    lg = Ledger.open(tmp_path / "data", db_url, "schema.example/log")
    try:
        _, token = create_token(lg.store, "admin")
        app = create_app(lg, rate_limit=0, auth_failure_rate=0)
        auth = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as c:
            evs = {"events": [make_event() for _ in range(5)]}
            c.post("/v1/events:batch", json=evs, headers=auth).raise_for_status()
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            # The test sends an admin's token itself: no Authorization values are
            # generated from the bearer scheme (a negative case dropping the header would
            # be sent with the token all the same, and accepted).
            schema.config.generation.update(with_security_parameters=False)
            exercised = []
            for result in schema.get_all_operations():
                op = result.ok()

                @settings(
                    max_examples=NEGATIVE_EXAMPLES,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
                def check(case: Any) -> None:
                    # Every default check, negative_data_rejection among them (invalid
                    # input gets a 4xx) and not_a_server_error (never a 5xx), as an admin,
                    # whom every route admits; positive acceptance is for the test above.
                    case.call_and_validate(
                        headers=auth, excluded_checks=[schemathesis.checks.positive_data_acceptance]
                    )

                try:
                    check()
                except Unsatisfiable:
                    # Nothing the schema forbids: no parameters, or free-form text (tile
                    # paths, upload bodies; tests/test_fuzz.py and test_errors.py cover them).
                    continue
                exercised.append(op.label)
            assert len(exercised) >= 12, exercised
    finally:
        lg.close()
