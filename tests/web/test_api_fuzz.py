"""HTTP API fuzzing: schemathesis generates requests for every operation of the real OpenAPI schema
(served by the app itself at ``/api/schema/``) and sends them to Django's WSGI application in-process,
as an admin with a token. Whatever it sends, the API must never answer 5xx.

Bounded: a fixed number of examples per operation, derandomized, so the run is reproducible and takes
well under 90 s. Real PostgreSQL (transactional test database), in-memory knowledge index.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from knowledge.actions import do_add_item, reset_retriever
from webconsole.calls.models import Call, Extension, Operator, Role, Turn

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def admin_token(settings: Any) -> Iterator[str]:
    """An admin operator with a token, and one object of each kind so detail routes can be hit."""
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"fuzz{uuid.uuid4().hex[:8]}"
    reset_retriever()
    user = User.objects.create_user("fuzz-admin", password="x" * 12, is_staff=True, is_superuser=True)
    Operator.objects.create(user=user, role=Role.ADMIN)
    Extension.objects.get_or_create(number="1001")
    call = Call.objects.create(call_id="fuzz-call-1", caller="01012345678", callee="1001", state="ended")
    Turn.objects.create(call=call, event_id="fuzz-call-1-1", t=1.0, speaker="caller", text="Hello?")
    do_add_item("1001", "We open at nine on weekdays.")
    yield Token.objects.create(user=user).key
    reset_retriever()


@pytest.fixture
def api_schema(admin_token: str) -> Any:
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers={"Authorization": f"Token {admin_token}"}
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail_with_a_server_error(case: Any, admin_token: str) -> None:
    response = case.call(headers={"Authorization": f"Token {admin_token}"})

    case.validate_response(response, checks=[not_a_server_error])


def test_options_on_operators_me_answers_instead_of_failing(admin_token: str) -> None:
    # Found by the fuzzer: DRF's OPTIONS metadata called get_object() on the pk-less ``me`` route (500).
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {admin_token}")

    response = client.options("/api/v1/operators/me/")

    assert response.status_code == 200
    assert "PUT" in response.json()["actions"]
