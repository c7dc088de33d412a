"""The REST API (``/api/v1/``): authentication, CSRF, per-extension permissions, knowledge, schema.

Real PostgreSQL and the real embedding model; the vector index is an in-memory
store per test. Tests are transactional so ``transaction.on_commit`` fires and
the index follows approve/reject/edit exactly as in production.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from knowledge.actions import do_add_item, reset_retriever
from knowledge.models import KnowledgeItem, Status
from webconsole.calls.models import Call, Extension, HitlStatus, Operator, Presence, Role, Turn

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "x" * 12
API = "/api/v1"


@pytest.fixture(autouse=True)
def knowledge_index(settings: Any) -> Iterator[None]:
    """An in-memory vector index of this test's own (a fresh prefix makes get_retriever build one)."""
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"apitest{uuid.uuid4().hex[:8]}"
    reset_retriever()
    yield
    reset_retriever()


def make_user(name: str, role: str, *extensions: str) -> User:
    user = User.objects.create_user(name, password=PASSWORD)
    operator = Operator.objects.create(user=user, role=role)
    for number in extensions:
        operator.extensions.add(Extension.objects.get_or_create(number=number)[0])
    return user


def make_call(
    call_id: str, callee: str, *, started: datetime | None = None, ai: bool = True, hitl: str = HitlStatus.NONE
) -> Call:
    call = Call.objects.create(
        call_id=call_id,
        caller="01012345678",
        callee=callee,
        state="ended",
        ai_handled=ai,
        hitl_status=hitl,
        started=started or timezone.now(),
    )
    Turn.objects.create(call=call, event_id=f"{call_id}-2", t=4.0, speaker="caller", text="When are you open?")
    Turn.objects.create(call=call, event_id=f"{call_id}-1", t=0.0, speaker="ai", text="Hello.")
    return call


@dataclass
class World:
    op: User
    admin: User
    call_1002: Call
    call_1003: Call
    item_1002: KnowledgeItem
    item_1003: KnowledgeItem


@pytest.fixture
def world() -> World:
    """Extensions 1002 and 1003, a call and an approved item of each; ``op`` looks after 1002 only."""
    op = make_user("op", Role.OPERATOR, "1002")
    make_user("op3", Role.OPERATOR, "1003")
    admin = make_user("boss", Role.ADMIN)
    Extension.objects.get_or_create(number="1003")
    return World(
        op=op,
        admin=admin,
        call_1002=make_call("call-1002", "1002"),
        call_1003=make_call("call-1003", "1003", hitl=HitlStatus.UNRESOLVED),
        item_1002=do_add_item("1002", "The office is open from 9 to 6.", status=Status.APPROVED)[0].item,
        item_1003=do_add_item("1003", "The wifi password is tiger42.", status=Status.APPROVED)[0].item,
    )


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- authentication ------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "/calls/"), ("get", "/calls/call-1002/"), ("patch", "/calls/call-1002/"),
    ("get", "/knowledge/items/"), ("post", "/knowledge/items/"), ("get", "/knowledge/items/1/"),
    ("put", "/knowledge/items/1/"), ("patch", "/knowledge/items/1/"), ("delete", "/knowledge/items/1/"),
    ("post", "/knowledge/items/1/approve/"), ("post", "/knowledge/items/1/reject/"),
    ("get", "/knowledge/search?owner=1002&q=open"), ("get", "/extensions/"), ("get", "/operators/"),
    ("get", "/operators/me"), ("put", "/operators/me"), ("patch", "/operators/me/"), ("get", "/"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_anonymous_gets_401_everywhere(method: str, path: str) -> None:
    response = getattr(APIClient(), method)(API + path, {}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_anonymous_gets_401_for_the_schema() -> None:
    assert APIClient().get("/api/schema/").status_code == 401


def test_token_made_by_drf_create_token_authenticates(world: World) -> None:
    # given a token from the documented management command
    out = io.StringIO()
    call_command("drf_create_token", "op", stdout=out)
    key = out.getvalue().split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    # when / then: reads and writes work (a token request needs no CSRF token)
    assert [c["call_id"] for c in rows(client.get(f"{API}/calls/"))] == ["call-1002"]
    response = client.patch(f"{API}/calls/call-1002/", {"notes": "called back"}, format="json")
    assert response.status_code == 200
    assert Call.objects.get(call_id="call-1002").notes == "called back"


def test_a_wrong_token_is_401(world: World) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    assert client.get(f"{API}/calls/").status_code == 401


UNSAFE = [
    ("patch", "/calls/call-1002/", {"notes": "x"}),
    ("post", "/knowledge/items/", {"owner": "1002", "text": "Parking is in the basement."}),
    ("put", "/knowledge/items/{item}/", {"text": "The office is open from 8 to 5."}),
    ("delete", "/knowledge/items/{item}/", None),
    ("post", "/knowledge/items/{item}/reject/", None),
    ("put", "/operators/me", {"status": "busy"}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE)
def test_session_auth_without_csrf_token_is_403(world: World, method: str, path: str, body: Any) -> None:
    # given a browser session
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="op", password=PASSWORD)
    url = API + path.format(item=world.item_1002.pk)

    # when it sends an unsafe request without the CSRF token
    response = getattr(client, method)(url, body, format="json")

    # then it is refused and nothing changed
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Call.objects.get(call_id="call-1002").notes == ""
    item = KnowledgeItem.objects.get(pk=world.item_1002.pk)
    assert (item.version, item.status) == (1, Status.APPROVED)
    assert KnowledgeItem.objects.filter(owner="1002").count() == 1
    assert Operator.objects.get(user=world.op).status == Presence.OFFLINE
    # while reading with the session works
    assert client.get(f"{API}/calls/").status_code == 200


def test_session_auth_with_csrf_token_may_write(world: World) -> None:
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="op", password=PASSWORD)
    client.get("/accounts/login/")  # the login page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value

    response = client.patch(
        f"{API}/calls/call-1002/", {"follow_up": True}, format="json", headers={"X-CSRFToken": csrf}
    )

    assert response.status_code == 200
    assert Call.objects.get(call_id="call-1002").follow_up is True


# --- permissions: an operator of 1002 and the objects of 1003 ------------------------------------

FOREIGN = [
    ("get", "/calls/call-1003/", None),
    ("patch", "/calls/call-1003/", {"notes": "mine now"}),
    ("get", "/knowledge/items/{item}/", None),
    ("put", "/knowledge/items/{item}/", {"text": "The wifi password is lion.", "category": "info"}),
    ("patch", "/knowledge/items/{item}/", {"text": "The wifi password is lion."}),
    ("delete", "/knowledge/items/{item}/", None),
    ("post", "/knowledge/items/{item}/approve/", None),
    ("post", "/knowledge/items/{item}/reject/", None),
    ("get", "/knowledge/search?owner=1003&q=wifi+password", None),
]


@pytest.mark.parametrize(("method", "path", "body"), FOREIGN)
def test_operator_gets_404_for_another_extensions_objects(world: World, method: str, path: str, body: Any) -> None:
    url = API + path.format(item=world.item_1003.pk)

    response = getattr(client_for(world.op), method)(url, body, format="json")

    assert response.status_code == 404
    call = Call.objects.get(call_id="call-1003")
    assert (call.notes, call.hitl_status) == ("", HitlStatus.UNRESOLVED)
    item = KnowledgeItem.objects.get(pk=world.item_1003.pk)
    assert (item.text, item.version, item.status) == ("The wifi password is tiger42.", 1, Status.APPROVED)


def test_the_same_requests_work_for_an_admin(world: World) -> None:
    admin = client_for(world.admin)
    item = f"{API}/knowledge/items/{world.item_1003.pk}/"

    assert admin.get(f"{API}/calls/call-1003/").status_code == 200
    assert admin.patch(f"{API}/calls/call-1003/", {"notes": "seen"}, format="json").status_code == 200
    assert admin.get(item).status_code == 200
    assert admin.post(item + "reject/").json()["status"] == Status.REJECTED
    assert admin.delete(item).status_code == 204
    assert not KnowledgeItem.objects.filter(pk=world.item_1003.pk).exists()


@pytest.mark.parametrize("query", ["", "?extension=1003", "?hitl=unresolved", "?page_size=500"])
def test_operator_call_lists_never_include_other_extensions(world: World, query: str) -> None:
    calls = rows(client_for(world.op).get(f"{API}/calls/{query}"))

    assert "1003" not in {c["callee"] for c in calls}


@pytest.mark.parametrize("query", ["", "?owner=1003", "?q=wifi", "?status=approved"])
def test_operator_item_lists_never_include_other_extensions(world: World, query: str) -> None:
    items = rows(client_for(world.op).get(f"{API}/knowledge/items/{query}"))

    assert "1003" not in {i["owner"] for i in items}


def test_operator_sees_only_their_extensions_and_colleagues(world: World) -> None:
    op = client_for(world.op)

    assert [e["number"] for e in rows(op.get(f"{API}/extensions/"))] == ["1002"]
    assert [o["username"] for o in rows(op.get(f"{API}/operators/"))] == ["op"]


def test_admin_sees_everything(world: World) -> None:
    admin = client_for(world.admin)

    assert {c["callee"] for c in rows(admin.get(f"{API}/calls/"))} == {"1002", "1003"}
    assert {i["owner"] for i in rows(admin.get(f"{API}/knowledge/items/"))} == {"1002", "1003"}
    assert {"1002", "1003"} <= {e["number"] for e in rows(admin.get(f"{API}/extensions/"))}
    assert {o["username"] for o in rows(admin.get(f"{API}/operators/"))} == {"op", "op3", "boss"}


def test_operator_cannot_create_an_item_for_another_extension(world: World) -> None:
    response = client_for(world.op).post(
        f"{API}/knowledge/items/", {"owner": "1003", "text": "Closed on Sunday."}, format="json"
    )

    assert response.status_code == 400
    assert "owner" in response.json()
    assert not KnowledgeItem.objects.filter(text="Closed on Sunday.").exists()


def test_a_user_without_an_operator_profile_sees_nothing(world: World) -> None:
    nobody = client_for(User.objects.create_user("nobody", password=PASSWORD))

    assert rows(nobody.get(f"{API}/calls/")) == []
    assert rows(nobody.get(f"{API}/knowledge/items/")) == []
    assert nobody.get(f"{API}/calls/call-1002/").status_code == 404


# --- calls ---------------------------------------------------------------------------------------


def test_call_detail_has_the_transcript_in_time_order(world: World) -> None:
    call = client_for(world.op).get(f"{API}/calls/call-1002/").json()

    assert call["callee"] == "1002"
    assert [(t["t"], t["speaker"]) for t in call["turns"]] == [(0.0, "ai"), (4.0, "caller")]


def test_call_filters(world: World) -> None:
    # given older and non-AI calls of 1002
    tz = timezone.get_current_timezone()
    make_call("old", "1002", started=datetime(2024, 3, 1, 10, 0, tzinfo=tz))
    make_call("human", "1002", ai=False, hitl=HitlStatus.NOTED)
    admin = client_for(world.admin)

    def ids(query: str) -> set[str]:
        return {c["call_id"] for c in rows(admin.get(f"{API}/calls/?{query}"))}

    # then each filter narrows the list as the call-history page does
    assert ids("date_from=2024-03-01&date_to=2024-03-01") == {"old"}
    assert ids("date_to=2024-03-02") == {"old"}
    assert ids("extension=1003") == {"call-1003"}
    assert ids("ai=false") == {"human"}
    assert ids("ai=true&extension=1002") == {"call-1002", "old"}
    assert ids("hitl=noted") == {"human"}


def test_patch_changes_only_the_operator_fields(world: World) -> None:
    response = client_for(world.op).patch(
        f"{API}/calls/call-1002/",
        {
            "notes": "Wants a quote",
            "follow_up": True,
            "callback_number": " +82 10-1234-5678 ",
            "hitl_status": "noted",
        },
        format="json",
    )

    assert response.status_code == 200
    call = Call.objects.get(call_id="call-1002")
    assert (call.notes, call.follow_up, call.callback_number, call.hitl_status) == (
        "Wants a quote",
        True,
        "+82 10-1234-5678",
        "noted",
    )
    assert response.json()["hitl_status"] == "noted"


def test_put_on_a_call_is_not_allowed(world: World) -> None:
    assert client_for(world.op).put(f"{API}/calls/call-1002/", {"notes": "x"}, format="json").status_code == 405


# --- bad input -----------------------------------------------------------------------------------

BAD = [
    ("get", "/calls/?date_from=yesterday", None, "date_from"),
    ("get", "/calls/?date_from=2024-05-02&date_to=2024-05-01", None, "date_to"),
    ("get", "/calls/?ai=maybe", None, "ai"),
    ("get", "/calls/?hitl=forgotten", None, "hitl"),
    ("patch", "/calls/call-1002/", {"state": "ai"}, "state"),
    ("patch", "/calls/call-1002/", {"callee": "1003"}, "callee"),
    ("patch", "/calls/call-1002/", {"callback_number": "call me maybe"}, "callback_number"),
    ("patch", "/calls/call-1002/", {"hitl_status": "done"}, "hitl_status"),
    ("patch", "/calls/call-1002/", {"follow_up": "perhaps"}, "follow_up"),
    ("get", "/knowledge/items/?status=lost", None, "status"),
    ("get", "/knowledge/items/?category=gossip", None, "category"),
    ("post", "/knowledge/items/", {"owner": "1002"}, "text"),
    ("post", "/knowledge/items/", {"owner": "1002", "text": "   "}, "text"),
    ("post", "/knowledge/items/", {"owner": "1002", "text": "x", "category": "gossip"}, "category"),
    ("post", "/knowledge/items/", {"owner": "1002", "text": "x", "status": "rejected"}, "status"),
    ("post", "/knowledge/items/", {"owner": "1002", "text": "x", "keywords": "notalist"}, "keywords"),
    ("post", "/knowledge/items/", {"owner": "9999", "text": "x"}, "owner"),
    ("post", "/knowledge/items/", {"owner": "1002", "text": "x", "usage_count": 99}, "usage_count"),
    ("put", "/knowledge/items/{item}/", {"category": "info"}, "text"),
    ("put", "/knowledge/items/{item}/", {"text": " "}, "text"),
    ("patch", "/knowledge/items/{item}/", {}, "non_field_errors"),
    ("patch", "/knowledge/items/{item}/", {"owner": "1003"}, "owner"),
    ("patch", "/knowledge/items/{item}/", {"status": "approved"}, "status"),
    ("get", "/knowledge/search?owner=1002", None, "q"),
    ("get", "/knowledge/search?q=open", None, "owner"),
    ("put", "/operators/me", {"status": "asleep"}, "status"),
    ("put", "/operators/me", {}, "status"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD)
def test_bad_input_is_400_naming_the_field(world: World, method: str, path: str, body: Any, field: str) -> None:
    url = API + path.format(item=world.item_1002.pk)

    response = getattr(client_for(world.op), method)(url, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()


def test_malformed_json_is_400(world: World) -> None:
    response = client_for(world.op).patch(f"{API}/calls/call-1002/", "{not json", content_type="application/json")

    assert response.status_code == 400


# --- knowledge -----------------------------------------------------------------------------------


def search(client: APIClient, owner: str, question: str) -> dict[str, Any]:
    response = client.get(f"{API}/knowledge/search", {"owner": owner, "q": question})
    assert response.status_code == 200, response.content
    return response.json()


def test_create_stores_an_approved_item_the_ai_finds(world: World) -> None:
    op = client_for(world.op)

    response = op.post(
        f"{API}/knowledge/items/",
        {"owner": "1002", "text": "Parking is free in the basement.", "category": "info", "keywords": ["parking"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    [result] = response.json()
    assert result["created"] is True
    item = KnowledgeItem.objects.get(pk=result["item"]["id"])
    assert (item.owner, item.status, item.source, item.keywords) == ("1002", Status.APPROVED, "manual", ["parking"])
    assert item.versions.get().edited_by == world.op
    hit = search(op, "1002", "Where can I park my car?")["passages"][0]
    assert hit["item_id"] == item.pk
    assert 0 < hit["score"] <= 1


def test_adding_a_duplicate_merges_into_the_existing_item(world: World) -> None:
    response = client_for(world.op).post(
        f"{API}/knowledge/items/", {"owner": "1002", "text": "the office is OPEN from 9 to 6"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()[0] == {"created": False, "item": response.json()[0]["item"]}
    assert response.json()[0]["item"]["id"] == world.item_1002.pk


def test_edit_creates_a_new_version_and_the_ai_uses_the_new_text(world: World) -> None:
    op = client_for(world.op)
    url = f"{API}/knowledge/items/{world.item_1002.pk}/"

    # when the text is edited (PUT), then only the category (PATCH)
    response = op.put(url, {"text": "The office is open from 8 to 5."}, format="json")
    assert response.status_code == 200, response.content
    response = op.patch(url, {"category": "instruction"}, format="json")

    # then each edit is a version, the old text is kept, and the index holds the new text
    body = response.json()
    assert (body["version"], body["text"], body["category"]) == (3, "The office is open from 8 to 5.", "instruction")
    assert [(v["version"], v["text"], v["edited_by"]) for v in body["versions"]] == [
        (1, "The office is open from 9 to 6.", None),
        (2, "The office is open from 8 to 5.", "op"),
        (3, "The office is open from 8 to 5.", "op"),
    ]
    passages = search(op, "1002", "When is the office open?")["passages"]
    assert [p["text"] for p in passages] == ["The office is open from 8 to 5."]


def test_approve_and_reject_change_what_the_ai_retrieves(world: World) -> None:
    op = client_for(world.op)
    question = "Is there a charging station for electric cars?"
    # given a pending item (as extraction or a reviewer leaves it)
    response = op.post(
        f"{API}/knowledge/items/",
        {
            "owner": "1002",
            "text": "There is a charging station for electric cars at the entrance.",
            "status": "pending",
        },
        format="json",
    )
    pk = response.json()[0]["item"]["id"]

    def found() -> bool:
        return pk in [p["item_id"] for p in search(op, "1002", question)["passages"]]

    assert not found()
    # when approved, the AI finds it
    assert op.post(f"{API}/knowledge/items/{pk}/approve/").json()["status"] == Status.APPROVED
    assert found()
    # when rejected, it is gone again
    assert op.post(f"{API}/knowledge/items/{pk}/reject/").json()["status"] == Status.REJECTED
    assert not found()
    # and pending/rejected items remain listed for review
    assert [i["id"] for i in rows(op.get(f"{API}/knowledge/items/?status=rejected"))] == [pk]


def test_delete_removes_the_item_from_the_ai(world: World) -> None:
    op = client_for(world.op)

    assert op.delete(f"{API}/knowledge/items/{world.item_1002.pk}/").status_code == 204

    assert not KnowledgeItem.objects.filter(pk=world.item_1002.pk).exists()
    assert search(op, "1002", "When is the office open?")["passages"] == []


def test_search_reports_scores_and_the_threshold(world: World) -> None:
    result = search(client_for(world.admin), "1003", "What is the wifi password?")

    assert result["owner"] == "1003"
    [passage] = result["passages"]
    assert passage["item_id"] == world.item_1003.pk
    assert passage["relevant"] == (passage["score"] >= result["threshold"])
    assert result["above_threshold"] == (result["confidence"] >= result["threshold"])


def test_item_list_filters(world: World) -> None:
    do_add_item("1002", "Deliveries go to the loading dock.", status=Status.PENDING, category="instruction")
    admin = client_for(world.admin)

    def texts(query: str) -> list[str]:
        return [i["text"] for i in rows(admin.get(f"{API}/knowledge/items/?{query}"))]

    assert texts("owner=1002&status=pending") == ["Deliveries go to the loading dock."]
    assert texts("category=instruction") == ["Deliveries go to the loading dock."]
    assert texts("q=WIFI") == ["The wifi password is tiger42."]
    assert texts("source=manual&owner=1002") == [
        "Deliveries go to the loading dock.",
        "The office is open from 9 to 6.",
    ]


# --- presence ------------------------------------------------------------------------------------


def test_operator_sets_and_reads_their_presence(world: World) -> None:
    op = token_client(world.op)

    response = op.put(f"{API}/operators/me", {"status": "available"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "available"
    assert Operator.objects.get(user=world.op).status == Presence.AVAILABLE
    me = op.get(f"{API}/operators/me/").json()
    assert (me["username"], me["role"], me["extensions"], me["status"]) == ("op", "operator", ["1002"], "available")
    assert op.patch(f"{API}/operators/me", {"status": "away"}, format="json").json()["status"] == "away"


# --- schema --------------------------------------------------------------------------------------


def test_openapi_schema_is_valid_and_lists_the_endpoints(world: World) -> None:
    client = client_for(world.op)

    as_json = client.get("/api/schema/?format=json")
    as_yaml = client.get("/api/schema/")

    assert as_json.status_code == as_yaml.status_code == 200
    schema = json.loads(as_json.content)
    validate_schema(schema)
    assert yaml.safe_load(as_yaml.content)["paths"].keys() == schema["paths"].keys()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths["/api/v1/calls/"]) == {"get"}
    assert set(paths["/api/v1/calls/{call_id}/"]) == {"get", "patch"}
    assert set(paths["/api/v1/knowledge/items/"]) == {"get", "post"}
    assert set(paths["/api/v1/knowledge/items/{id}/"]) == {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/knowledge/items/{id}/approve/"]) == {"post"}
    assert set(paths["/api/v1/knowledge/items/{id}/reject/"]) == {"post"}
    assert set(paths["/api/v1/knowledge/search/"]) == {"get"}
    assert set(paths["/api/v1/extensions/"]) == {"get"}
    assert set(paths["/api/v1/operators/"]) == {"get"}
    assert set(paths["/api/v1/operators/me/"]) == {"get", "put", "patch"}
    assert {"tokenAuth", "cookieAuth"} <= schema["components"]["securitySchemes"].keys()


def test_spectacular_command_validates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert "/api/v1/knowledge/search/" in yaml.safe_load(out.read_text())["paths"]


@pytest.mark.parametrize(
    "path", ["/calls/", "/calls/call-1002/", "/knowledge/items/", "/knowledge/items/{item}/", "/operators/me", "/"]
)
def test_the_browsable_api_renders_for_a_logged_in_user(world: World, path: str) -> None:
    client = APIClient()
    assert client.login(username="op", password=PASSWORD)

    response = client.get(API + path.format(item=world.item_1002.pk), headers={"accept": "text/html"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
