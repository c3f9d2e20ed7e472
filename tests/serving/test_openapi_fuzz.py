"""Schemathesis against the service's own OpenAPI document: schema-valid and schema-violating requests
for every operation; whatever it sends, the service never answers with a 5xx.

Driven through schemathesis' Python API with Hypothesis directly: its pytest plugin
(`schemathesis.pytest.from_fixture`) reads a private attribute that pytest 9 no longer has.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.serving.conftest import Service, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_request_gets_a_server_error(serving: Service, mode: GenerationMode):
    # start on a ready service (the test before may have replaced a worker), and leave /readyz out: its 503
    # "not ready" is its documented answer while a worker loads, not a server error
    wait_until(lambda: serving.get("/readyz").status_code == 200, 60, "every worker ready")
    schema = schemathesis.openapi.from_url(f"{serving.url}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path != "/readyz"]
    assert {"POST /predict", "POST /batch_predict", "POST /explain", "GET /predictions/history"} <= {
        f"{op.method.upper()} {op.path}" for op in operations
    }
    tried = 0
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.query)):
            continue  # nothing in the request to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
        tried += 1
    assert tried >= 4
