"""The console in Korean: every page walked in Korean shows no English left over; the header's switch.

Each console page (every URL name of the console's namespaces: a new page must be listed here) is
rendered twice with the same seeded objects, in Korean and in English. A text the reader sees (text
nodes, the title, button and option labels, ``title``/``aria-label``/``placeholder`` attributes, and
the texts the page hands its scripts) that holds Latin letters and is the same in both languages is
English left untranslated, unless it is data the test seeded or a term that stays Latin in Korean
(``AI``, ``STT``). Forms are posted wrong on purpose so their errors are read too, and the actions'
messages are read on the page they redirect to.

The suite's settings make English the default (its other tests read English); here ``LANGUAGE_CODE``
is the base settings' ``ko-kr`` again.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from aipbx.directory import load_directory
from knowledge.actions import reset_retriever
from knowledge.models import ExtractionRun, ImportJob, KnowledgeItem, KnowledgeVersion, Source, Status
from tests.web.calls_factory import PASSWORD, make_user
from webconsole.calls.models import Call, Callback, CallbackStatus, CallState, Extension, HitlStatus, Role, Turn
from webconsole.hitl.models import HitlRequest, Reason, RequestStatus
from webconsole.voicemail.models import Voicemail
from webconsole.webhooks.models import Delivery, DeliveryStatus, OutboxEvent, WebhookEndpoint

pytestmark = pytest.mark.django_db

#: Texts that are the same in Korean: names of technologies, units, the product's name, and the
#: English language's own name in the language switch.
SAME_IN_KOREAN = {
    "AI PBX",
    "AI",
    "HITL",
    "JSON",
    "STT",
    "TTS",
    "LLM",
    "p50",
    "p95",
    "English",
    "ms",
}
_ALTERNATIVES = "|".join(sorted(map(re.escape, SAME_IN_KOREAN), key=len, reverse=True))
SAME_WORDS = re.compile(rf"(?<![A-Za-z])(?:{_ALTERNATIVES})(?![A-Za-z])")
ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "data-on", "data-off", "data-alert-title")

#: Console pages by URL name, with the arguments of the seeded objects (see ``seeded``).
PAGES = {
    "console:dashboard": {},
    "console:calls": {},
    "console:call": {"call_id": "call-ko-1"},
    "console:operators": {},
    "console:extensions": {},
    "console:extension": {"number": "1002"},
    "analytics:index": {},
    "hitl:queue": {},
    "hitl:detail": {"request_id": "req-open"},
    "knowledge:list": {},
    "knowledge:add": {},
    "knowledge:item": {"item_id": "ITEM"},
    "knowledge:edit": {"item_id": "ITEM"},
    "knowledge:delete": {"item_id": "ITEM"},
    "knowledge:import": {},
    "knowledge:imports": {},
    "knowledge:learning": {},
    "webhooks:index": {},
    "privacy:index": {},
    "voicemail:inbox": {},
    "console:call#callback": {"call_id": "call-ko-cb"},
}
#: Not pages: actions (POST, their messages are read below), files and JSON.
NOT_PAGES = {
    "console:call-audio",
    "console:presence",
    "analytics:data",
    "hitl:claim",
    "hitl:answer",
    "knowledge:approve",
    "knowledge:reject",
    "knowledge:exclude-call",
    "knowledge:job-json",
    "privacy:export",
    "privacy:delete",
    "webhooks:retry",
    "console:callback",
    "console:take",
    "console:listen",
    "console:take-over",
    "voicemail:audio",
    "voicemail:handled",
}
NAMESPACES = ("console", "analytics", "hitl", "knowledge", "webhooks", "privacy", "voicemail")


class _Visible(HTMLParser):
    """The texts of a page a reader sees, and the JSON texts the page gives its scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0
        self._script_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
            self._script_json = found.get("id") == "console-i18n"
        for name in ATTRIBUTES:
            if found.get(name):
                self.texts.append(str(found[name]))
        if tag == "input" and found.get("type") in ("submit", "button") and found.get("value"):
            self.texts.append(str(found["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
            self._script_json = False

    def handle_data(self, data: str) -> None:
        if self._script_json:
            self.texts.extend(_strings(json.loads(data)))
        elif not self._skip:
            self.texts.append(data)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def visible_texts(html: str) -> set[str]:
    parser = _Visible()
    parser.feed(html)
    return {" ".join(text.split()) for text in parser.texts if text.strip()}


def untranslated(korean: str, english: str, data: set[str]) -> list[str]:
    """The texts of the Korean page with Latin letters that the English page shows the same."""
    english_texts = visible_texts(english)
    left = []
    for text in sorted(visible_texts(korean)):
        stripped = text
        for value in sorted(data, key=len, reverse=True):  # seeded data, also inside a longer text
            stripped = stripped.replace(value, " ")
        stripped = SAME_WORDS.sub(" ", stripped)
        if re.search(r"[A-Za-z]{2,}", stripped) and text in english_texts:
            left.append(text)
    return left


def console_url_names() -> set[str]:
    names = set()
    for namespace in NAMESPACES:
        resolver = get_resolver().namespace_dict[namespace][1]
        names |= {f"{namespace}:{name}" for name in _names(resolver)}
    return names


def _names(resolver: URLResolver) -> set[str]:
    found = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLPattern) and pattern.name:
            found.add(pattern.name)
        elif isinstance(pattern, URLResolver) and not pattern.namespace:
            found |= _names(pattern)
    return found


@pytest.fixture
def korean_default(settings: Any, tmp_path: Path) -> Iterator[Any]:
    settings.LANGUAGE_CODE = "ko-kr"
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"kbi18n{uuid.uuid4().hex[:8]}"
    settings.AIPBX_KNOWLEDGE_UPLOAD_DIR = tmp_path / "uploads"
    settings.AIPBX_RECORDINGS_DIR = tmp_path / "recordings"
    reset_retriever()
    yield settings
    reset_retriever()


@pytest.fixture
def seeded(korean_default: Any) -> dict[str, Any]:
    """One object of every kind the pages list or show, its texts in Korean or digits where it is data."""
    now = timezone.now()
    admin = make_user("관리자", role=Role.ADMIN)
    Extension.objects.update_or_create(
        number="1002",
        defaults={
            "name": "이지영",
            "language": "ko-KR",
            "greeting": "안녕하세요, 이지영 님의 비서입니다. 이 통화는 녹음됩니다.",
            "seeded": True,
        },
    )
    call = Call.objects.create(
        call_id="call-ko-1",
        caller="01012345678",
        callee="1002",
        state=CallState.ENDED,
        conversation_state="ended",
        ai_handled=True,
        started=now - timedelta(minutes=5),
        answered=now - timedelta(minutes=5),
        ended=now - timedelta(minutes=3),
        duration_s=120.0,
        billsec=110.0,
        hangup_by="caller",
        termination_reason="caller_hangup",
        hitl_status=HitlStatus.UNRESOLVED,
        follow_up=True,
        transcript_source="ai",
    )
    Call.objects.create(
        call_id="call-ko-live",
        caller="01099998888",
        callee="1002",
        state=CallState.AI,
        conversation_state="listening",
        ai_handled=True,
        started=now - timedelta(seconds=30),
        ai_confidence=0.8,
        ai_reply="주차는 지하 2층입니다.",
    )
    Turn.objects.create(call=call, event_id="e1", t=0.0, speaker="ai", text="안녕하세요, AI 비서입니다.")
    Turn.objects.create(
        call=call,
        event_id="e2",
        t=3.0,
        speaker="caller",
        text="주차는 어디에 하나요?",
        latency_ms={"first_rtp": 800.0},
        retrieved=[{"text": "주차는 지하 2층입니다.", "score": 0.9, "used": True}],
        interrupted=True,
        unspoken="나머지",
    )
    item = KnowledgeItem.objects.create(
        owner="1002",
        text="주차는 지하 2층입니다.",
        question="주차는 어디에 하나요?",
        keywords=["주차"],
        source=Source.CALL,
        source_call_id=call.call_id,
        source_speaker="callee",
        source_span={"start_s": 3.0, "end_s": 5.0},
        confidence=0.9,
        status=Status.PENDING,
    )
    KnowledgeVersion.objects.create(item=item, version=1, text=item.text, category=item.category, edited_by=admin)
    ExtractionRun.objects.create(
        call_id=call.call_id, owner="1002", status=ExtractionRun.RunStatus.DONE, notes=["메모"]
    )
    ImportJob.objects.create(owner="1002", filename="/tmp/자주묻는질문.txt", total=3, done=1)
    HitlRequest.objects.create(
        request_id="req-open",
        call=call,
        question="환불 되나요?",
        reason=Reason.LOW_CONFIDENCE,
        confidence=0.3,
        retrieved=[{"text": "환불은 7일 이내입니다.", "score": 0.4}],
        recent_turns=[{"speaker": "caller", "text": "환불 되나요?"}],
        status=RequestStatus.WAITING,
        created=now - timedelta(minutes=4),
    )
    HitlRequest.objects.create(
        request_id="req-done",
        call=call,
        question="영업시간은요?",
        reason=Reason.ASKED_FOR_PERSON,
        status=RequestStatus.DELIVERED,
        claimed_by=admin,
        answer_raw="9시부터",
        answer_text="9시부터 엽니다.",
        answered_at=now - timedelta(minutes=3),
        created=now - timedelta(minutes=4),
    )
    # a voicemail of the call (so the inbox and the call page show one), and a failed call-back of it
    voicemail = Voicemail.objects.create(
        call=call, callee="1002", caller=call.caller, duration_s=12.0, transcript="내일 다시 전화 주세요.",
        created=now - timedelta(minutes=2),
    )  # fmt: skip
    callback_call = Call.objects.create(
        call_id="call-ko-cb", caller=call.caller, callee="1002", state=CallState.ENDED, callback_of=call,
        started=now - timedelta(minutes=1), ended=now, duration_s=5.0, termination_reason="operator_unregistered",
    )  # fmt: skip
    Callback.objects.create(
        callback_id="cb-ko", call=callback_call, operator=admin, operator_ext="1003", number=call.caller,
        status=CallbackStatus.FAILED, reason="operator_unregistered",
    )  # fmt: skip
    del voicemail
    endpoint = WebhookEndpoint.objects.create(name="알림", url="https://example.com/hook", secret="s" * 32)
    event = OutboxEvent.objects.create(type="call_ended", key="call_ended:call-ko-1", payload={}, occurred_at=now)
    Delivery.objects.create(
        endpoint=endpoint, event=event, status=DeliveryStatus.DEAD, attempts=3, last_status_code=500, last_error="500"
    )
    client = Client()
    assert client.login(username="관리자", password=PASSWORD)
    directory = load_directory(Path(korean_default.AIPBX_EXTENSIONS_FILE))
    data = {
        "https://example.com/hook",
        "call_ended",
        str(event.uuid),
        "call-ko-1",
        "/tmp/자주묻는질문.txt",
        "자주묻는질문.txt",
        *(ext.owner for ext in directory),
    }
    return {"client": client, "item": item, "data": data}


def _url(name: str, kwargs: dict[str, Any], item: KnowledgeItem) -> str:
    name = name.split("#")[0]
    return reverse(name, kwargs={k: item.pk if v == "ITEM" else v for k, v in kwargs.items()})


def _both(client: Client, method: str, url: str, data: dict[str, Any] | None = None) -> tuple[str, str]:
    """The page in Korean (the default) and in English (the browser asks for it)."""
    pages = []
    for headers in ({}, {"HTTP_ACCEPT_LANGUAGE": "en"}):
        call = client.post if method == "post" else client.get
        response = call(url, data or {}, follow=True, **headers)
        assert response.status_code in (200, 400), (url, response.status_code)
        pages.append(response.content.decode())
    return pages[0], pages[1]


def test_every_console_page_is_listed_here() -> None:
    # given the console's URL names
    names = console_url_names()
    # then each is a page walked below or an action whose message is read below
    pages = {name.split("#")[0] for name in PAGES}  # "name#what": the same page showing something else
    assert names - pages - NOT_PAGES == set(), "a new page: add it to PAGES (or NOT_PAGES)"
    assert pages | NOT_PAGES <= names


def test_every_console_page_in_korean_has_no_english_left(seeded: dict[str, Any]) -> None:
    client, item, data = seeded["client"], seeded["item"], seeded["data"]
    left = {}
    for name, kwargs in PAGES.items():
        korean, english = _both(client, "get", _url(name, kwargs, item))
        assert '<html lang="ko">' in korean and '<html lang="en">' in english, name
        if found := untranslated(korean, english, data):
            left[name] = found
    # the knowledge search and the paged, filtered lists
    for url in (
        reverse("knowledge:list") + "?ask=주차&ask_owner=1002",
        reverse("knowledge:list") + "?status=bogus",
        reverse("console:calls") + "?ai=yes&hitl=unresolved&date_from=2020-01-01",
        reverse("analytics:index") + "?days=30",
    ):
        korean, english = _both(client, "get", url)
        if found := untranslated(korean, english, data):
            left[url] = found
    assert left == {}, json.dumps(left, ensure_ascii=False, indent=1)


def test_forms_errors_and_messages_are_korean_too(seeded: dict[str, Any]) -> None:
    client, item, data = seeded["client"], seeded["item"], seeded["data"]
    posts = [
        # invalid forms: their errors
        (reverse("knowledge:add"), {"owner": "1002", "text": " ", "category": "info"}),
        (reverse("knowledge:import"), {"owner": "1002"}),
        (reverse("console:call", args=["call-ko-1"]), {"callback_number": "not a number", "hitl_status": ""}),
        (reverse("hitl:answer", args=["req-open"]), {"text": ""}),
        (reverse("privacy:delete"), {"phone": "12"}),
        (reverse("knowledge:learning"), {"owner": "1002", "1002-publish_threshold": "7"}),
        # actions: the message on the page they lead to
        (reverse("console:presence"), {"status": "available", "next": "/"}),
        (reverse("console:presence"), {"status": "bogus", "next": "/"}),
        (reverse("knowledge:approve", args=[item.pk]), {}),
        (reverse("knowledge:edit", args=[item.pk]), {"text": item.text, "question": item.question, "category": "info"}),
        (reverse("hitl:claim", args=["req-open"]), {}),
        (reverse("webhooks:retry", args=[Delivery.objects.get().pk]), {}),
        (reverse("console:call", args=["call-ko-1"]), {"notes": "메모", "callback_number": "010-1234-5678"}),
        (reverse("console:callback", args=["call-ko-1"]), {}),  # the admin has no phone of their own
        (reverse("console:take", args=["call-ko-1"]), {}),
        (reverse("console:listen", args=["call-ko-1"]), {}),
        (reverse("console:take-over", args=["call-ko-1"]), {}),
        (reverse("voicemail:handled", args=[Voicemail.objects.get().pk]), {"handled": "1"}),
        (reverse("voicemail:handled", args=[Voicemail.objects.get().pk]), {"handled": "0"}),
    ]
    left = {}
    for url, form in posts:
        korean, english = _both(client, "post", url, form)
        if found := untranslated(korean, english, data):
            left[url] = found
    assert left == {}, json.dumps(left, ensure_ascii=False, indent=1)
    # and the texts themselves arrived (not an empty page that trivially passes)
    korean, _ = _both(client, "post", reverse("knowledge:add"), {"owner": "1002", "text": " ", "category": "info"})
    assert "이 필드는 필수 항목입니다." in korean or "어시스턴트가 발신자에게 말해도 되는 내용을 입력하세요." in korean


def test_the_korean_default_the_browsers_language_and_the_header_switch(korean_default: Any) -> None:
    # given an operator whose browser says nothing about languages
    make_user("상담원", role=Role.ADMIN)
    client = Client()
    client.login(username="상담원", password=PASSWORD)
    # then the console is Korean (LANGUAGE_CODE), with the switch in the header
    page = client.get(reverse("console:dashboard")).content.decode()
    assert '<html lang="ko">' in page and "<h1>대시보드</h1>" in page
    assert f'action="{reverse("set_language")}"' in page and '<option value="en" lang="en">English</option>' in page
    # a browser asking for English gets English
    assert "Dashboard" in client.get(reverse("console:dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    # when the operator picks English in the header's switch
    response = client.post(reverse("set_language"), {"language": "en", "next": reverse("console:calls")})
    # then they are back on the page, now in English, and it stays so
    assert response.status_code == 302 and response["Location"] == reverse("console:calls")
    page = client.get(reverse("console:calls")).content.decode()
    assert '<html lang="en">' in page and "Call history" in page and "통화 기록" not in page
    # and back to Korean, whatever the browser asks for
    client.post(reverse("set_language"), {"language": "ko", "next": "/"})
    page = client.get(reverse("console:calls"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "통화 기록" in page


def test_the_login_page_is_korean_and_has_the_switch(korean_default: Any) -> None:
    page = Client().get(reverse("login")).content.decode()
    assert "로그인" in page and "사용자 이름" in page and reverse("set_language") in page


def test_dates_follow_the_language(seeded: dict[str, Any]) -> None:
    client = seeded["client"]
    call = Call.objects.get(call_id="call-ko-1")
    local = timezone.localtime(call.started)
    korean, english = _both(client, "get", reverse("console:call", args=[call.call_id]))
    assert f"{local.year}. {local.month}. {local.day}. {local:%H:%M:%S}" in korean
    assert f"{local:%Y-%m-%d %H:%M:%S}" in english
