"""Schemathesis against the live OpenAPI schema (/api/schema/), in process through
the WSGI application: every operation gets schema-valid and schema-violating input,
without a user token and with one, and must never answer a 5xx, nor an answer the
schema does not document (status, content type, body shape), nor accept input the
schema says is invalid. Bounded (few examples per operation, deterministic) so it
runs in about a minute and never flakes."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.auth import user_token_mint

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
# No made-up extra query parameters: the API ignores parameters it does not know.
schema.config.generation.update(deterministic=True, database="none", max_examples=12, allow_extra_parameters=False)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_transaction_open():
    """The WSGI handler closes database connections after each request; the test's
    transaction must survive them (Django's own test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=["anonymous", "user"])
def auth_headers(request) -> dict:
    if request.param == "anonymous":
        return {}
    return {"Authorization": f"Bearer {user_token_mint(user_id='fuzz-user')}"}


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_breaks_the_api_or_leaves_the_schema(case, auth_headers):
    headers = dict(case.headers or {})
    if auth_headers and "Authorization" not in headers:
        headers.update(auth_headers)
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
