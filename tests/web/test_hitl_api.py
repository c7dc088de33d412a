"""The help-request endpoints of the REST API (``/api/v1/hitl/``): my extensions only, claim, answer, conflicts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from knowledge.actions import reset_retriever
from knowledge.models import KnowledgeItem, Source, Status
from tests.web.calls_factory import PASSWORD, event
from tests.web.test_hitl import ask, operator, read_replies
from webconsole.calls.ingest import apply_event

pytestmark = pytest.mark.django_db(transaction=True)
API = "/api/v1/hitl"


@pytest.fixture
def replies(settings: Any) -> Iterator[redis.Redis]:
    settings.AIPBX_INSTANCE = f"testhitlapi{uuid.uuid4().hex[:10]}"
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"hitlapi{uuid.uuid4().hex[:8]}"
    reset_retriever()
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
    yield client
    for key in client.scan_iter(f"aipbx:{settings.AIPBX_INSTANCE}:hitl:*"):
        client.delete(key)
    client.close()
    reset_retriever()


def token_client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_list_and_detail_show_only_my_extensions(replies) -> None:
    kim = operator("kim", "1002")
    operator("park", "1003")
    ask("c1", "r1", callee="1002")
    ask("c2", "r2", callee="1003")
    client = token_client(kim)
    body = client.get(f"{API}/").json()
    assert [r["request_id"] for r in body["results"]] == ["r1"]
    detail = client.get(f"{API}/r1/").json()
    assert detail["status"] == "waiting" and detail["callee"] == "1002" and detail["retrieved"][0]["score"] == 0.41
    assert client.get(f"{API}/r2/").status_code == 404
    assert client.post(f"{API}/r2/claim").status_code == 404
    assert client.post(f"{API}/r2/answer", {"text": "x"}, format="json").status_code == 404
    assert [r["request_id"] for r in client.get(f"{API}/?status=open").json()["results"]] == ["r1"]
    assert client.get(f"{API}/?status=delivered").json()["results"] == []
    assert APIClient().get(f"{API}/").status_code in (401, 403)


def test_claim_answer_and_save_to_knowledge(replies) -> None:
    kim, lee = operator("kim", "1002"), operator("lee", "1002")
    ask("c3", "r3")
    kim_api, lee_api = token_client(kim), token_client(lee)
    # when
    claimed = kim_api.post(f"{API}/r3/claim")
    refused = lee_api.post(f"{API}/r3/claim")
    answered = kim_api.post(f"{API}/r3/answer", {"text": "오후 2시", "save_to_knowledge": True}, format="json")
    # then
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "kim"
    assert refused.status_code == 409 and refused.json()["detail"] == "kim has already claimed this request."
    assert answered.status_code == 200 and answered.json()["answer_text"] == "확인해 보니, 오후 2시."
    assert read_replies(replies, "r3")[-1] == {"kind": "answer", "text": "확인해 보니, 오후 2시.", "operator": "kim"}
    item = KnowledgeItem.objects.get(pk=answered.json()["saved_item"])
    assert (item.source, item.status, item.source_call_id) == (Source.HITL, Status.PENDING, "c3")
    again = lee_api.post(f"{API}/r3/answer", {"text": "3시"}, format="json")
    assert again.status_code == 409 and "kim already answered" in again.json()["detail"]


def test_bad_answers_and_answers_after_hang_up(replies) -> None:
    kim = operator("kim", "1002")
    ask("c4", "r4")
    client = token_client(kim)
    assert client.post(f"{API}/r4/answer", {"text": "가" * 501}, format="json").status_code == 400
    assert client.post(f"{API}/r4/answer", {"text": "x", "extra": 1}, format="json").status_code == 400
    apply_event(event("hitl.cancelled", "c4", request_id="r4", why="caller_hangup"))
    gone = client.post(f"{API}/r4/answer", {"text": "오후 2시"}, format="json")
    assert gone.status_code == 409 and "hung up" in gone.json()["detail"]


def test_session_posts_need_the_csrf_token(replies) -> None:
    operator("kim", "1002")
    ask("c5", "r5")
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="kim", password=PASSWORD)
    assert client.post(f"{API}/r5/claim").status_code == 403
