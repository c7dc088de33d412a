"""The words that carry a caller's question, and what kind of answer it wants (Korean and English).

Pure text functions for :mod:`knowledge.retrieval.relevance`: no model, no I/O.

* :func:`key_terms` — the content words of a question: not question words, pronouns, auxiliaries or
  the polite padding of a phone call ("I was wondering if you could tell me..."), stemmed lightly
  (English plural/verb endings; Korean particles and endings), so "kids" meets "kid" and "주차는"
  meets "주차".
* :func:`answer_types` — what the question asks for: a ``price``, a ``time`` (hours, a day), a
  ``place``, a ``phone`` number, a ``person``; and :func:`passage_types` — which of those a passage
  states. A price question answered by a passage with no price is a near miss, not an answer.
* :func:`weekdays` — the days a text names or spans ("Monday to Friday", "평일", "주말").
* :func:`past_limit` — the amounts a question asks beyond ("after the first two hours") that a
  passage states only as its limit ("free for up to 2 hours"): it says nothing of what comes after;
  :func:`detail_missing` — the detail of a booking a question changes ("the phone number on my
  appointment") that a passage does not name.
* :func:`moves_booking` — a question that moves a booking to another time, and
  :func:`tells_rescheduling` — a passage that tells how bookings are moved.
* :func:`proper_names` — the names a knowledge base uses ("Dr. Minsu Park", "Chuseok", "Kakao Pay"):
  what a caller may say that a recogniser does not expect (recognition hints); :func:`named` — the
  words of the names a question says ("english" in "Does Dr. Lee speak English?"), which a passage
  must mention to answer it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "address_answers",
    "answer_types",
    "asked",
    "asks_address",
    "clock_missing",
    "covers",
    "detail_missing",
    "introduction_only",
    "is_korean",
    "key_terms",
    "mentions",
    "moves_booking",
    "named",
    "passage_types",
    "past_limit",
    "place_topic",
    "proper_names",
    "states_address",
    "stem",
    "synonyms",
    "tells_rescheduling",
    "thing_asked",
    "thing_missing",
    "today_missing",
    "weekdays",
    "without_business",
    "words",
]

_WORD: Final = re.compile(r"[0-9]+(?:[.,:][0-9]+)*|[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
_HANGUL: Final = re.compile(r"[\uac00-\ud7a3]")

# English words that never carry the topic of a question on the phone.
_STOP_EN: Final = frozenset(
    """
a an the and or but so if then than that this these those there here it its it's is are was were be been being
am do does did doing done have has had having can could will would shall should may might must i i'm i'd i'll
me my mine you you're you'd your yours we we're our ours us he she him her his hers they them their theirs what
what's which who whom whose when where why how how's wanna gonna like just really actually maybe please
thanks thank hi hello hey um uh er oh okay ok yes yeah no not any anything some something much many more most
about of for to from in on at by with without into onto up down out over under again also too very still yet
only even tell know wondering wonder whether want wanted need needed looking look ask asking question get got go going
come coming see let make say said there's else bit lot guys guy kind sort stuff thing things way one ones
around like there'll today right now well sure call calling
time times hour hours open opening opened close closing closed cost costs price prices fee fees charge
charges pay paying much day days week exactly usually normally
morning mornings afternoon afternoons evening evenings night nights tonight
""".split()
)

# Korean particles and endings stripped from the end of a word (longest first).
_KO_SUFFIXES: Final = tuple(
    sorted(
        """
이에요 예요 이야 이요 에서는 에서도 에서 에게 한테 께서 으로는 으로 로는 로 까지는
까지 부터 처럼 보다 이랑 랑 하고 이나 나 은 는 이 가 을 를 에 의 도 만 요 과 와
야 죠 지요 나요 까요 세요 하세요 해요 하나요 되나요 돼요 되요 있어요 있나요 있습니까
없어요 없나요 인가요 일까요 인데 는데 데요 거든요 네요 습니까 합니까 입니까 니까 어요
아요 여요 해도 돼도 해주세요 주세요 하셨어요 하셨나요 하셨죠 하셨 하시나요 하시죠 했어요 했나요 했죠
됐어요 됐나요 됐죠 에도 에는 에만 에선 엔
""".split(),
        key=len,
        reverse=True,
    )
)
_STOP_KO: Final = frozenset(
    """
혹시 좀 저 제 저희 그 이 거 것 뭐 뭔가 어떻게 어디 언제 얼마 몇 누가 누구 무슨
어떤 왜 네 예 아 음 그럼 그리고 그래서 근데 시 시간 가격 비용 요금 얼마예 얼마에 문
열 닫 하시 하는지 되는지 있어요 없어요 하세요 되나요 돼요 가능 가능해요 가능한가요 해요
하나요 알 수 있을까요 궁금 궁금해요 여쭤 물어 보려고 좀요 요 거기 여기 그거 이거 다
또 혹은 아니면 정도 쯤 때 수 하는 되는 있는 없는 주세요 해주세요 알려 알려주세요
계 계시 계신 계셔 나오 나오시 보 봐 봐주 봐주시
""".split()
)

_WEEKDAYS_EN: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS_KO: Final = ("월", "화", "수", "목", "금", "토", "일")

_PRICE_Q: Final = re.compile(
    r"how much|\bcost|\bprice|\bfee\b|\bfees\b|\bcharge|\bpay\b|\brun (?:me|you|us)\b|얼마|가격|비용|요금|값", re.I
)
_TIME_Q: Final = re.compile(
    r"\bwhen\b|what time|\bhours?\b|\bopen\b|\bclose[sd]?\b|\buntil\b|\btill\b|\blatest\b|"
    r"\bearliest\b|\bdays?\b|\bweekends?\b|\b(?:morning|afternoon|evening|night)s?\b|\btonight\b|"
    + "|".join(_WEEKDAYS_EN)
    + r"|몇\s*시|언제|"
    r"시간|요일|주말|평일|영업|문\s*(?:열|닫)|마감",
    re.I,
)
_PLACE_Q: Final = re.compile(
    r"\bwhere\b|\baddress\b|\blocated\b|\blocation\b|\bfloor\b|\bexit\b|"
    r"어디|주소|위치|몇\s*층|출구",
    re.I,
)
_PHONE_Q: Final = re.compile(
    r"phone number|\bnumber\b|\bcall you\b|\bextension\b|\bemail\b|\be-mail\b|연락처|번호|"
    r"이메일|메일",
    re.I,
)
_PRICE_A: Final = re.compile(
    r"\d[\d,.]*\s*(?:won|krw|dollars?|원|만\s*원)|[$₩]\s*\d|\bfree\b|무료|만\s*원|천\s*원", re.I
)
_TIME_A: Final = re.compile(
    r"\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)|\d{1,2}:\d{2}|\bnoon\b|\bmidnight\b|"
    r"오전|오후|\d{1,2}\s*시|" + "|".join(_WEEKDAYS_EN) + r"|weekdays?|weekends?|"
    r"[월화수목금토일]요일|평일|주말|공휴일|holidays?",
    re.I,
)
_PLACE_A: Final = re.compile(
    r"\b\d+(?:st|nd|rd|th)?\s+floor|\bfloor\b|\bexit\b|\bstation\b|\bstreet\b|\bro\b|\bgil\b|"
    r"\bbuilding\b|-ro\b|-gil\b|층|출구|역|로\s*\d|길\s*\d|건물|빌딩",
    re.I,
)
_PHONE_A: Final = re.compile(
    r"\b0\d{1,2}-\d{3,4}-\d{4}\b|\b\d{3,4}-\d{4}\b|[\w.+-]+@[\w-]+\.[\w.]+|\bextension\s*\d+|"
    r"내선\s*\d+",
    re.I,
)

_COVERED_BY: Final = {  # a range that names days without listing them
    "weekday": {"monday", "tuesday", "wednesday", "thursday", "friday"},
    "weekdays": {"monday", "tuesday", "wednesday", "thursday", "friday"},
    "weekend": {"saturday", "sunday"},
    "weekends": {"saturday", "sunday"},
    "평일": {"monday", "tuesday", "wednesday", "thursday", "friday"},
    "주말": {"saturday", "sunday"},
}


def words(text: str) -> list[str]:
    """Lower-cased words and numbers of ``text`` (NFKC: full-width forms are the plain ones)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(unicodedata.normalize("NFKC", text))]


def stem(word: str) -> str:
    """A light stem: English plural and verb endings, Korean particles and polite endings."""
    if _HANGUL.search(word):
        for suffix in _KO_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 1:
                word = word[: -len(suffix)]
                break
        # the honorific "님" of a title ("실장님" is the "실장" of "김준호 실장은"); "손님" keeps it
        return word[:-1] if word.endswith("님") and len(word) >= 3 else word
    word = word.removesuffix("'s").removesuffix("'")
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("ing", ""),
        ("ed", ""),
        ("es", "e"),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


# A caller's greeting and self-introduction before the question ("Hi, this is Alex from Acme.",
# "Hi Jiyoung, it's Alex again.", "안녕하세요, 저는 에이스의 알렉스입니다."): who is calling is not what they
# ask, and its names are words no passage covers. Only a name-led introduction (a capital after "this
# is" / "it's" / "my name is") that ends its own sentence is taken, so "It's about my bill." stays.
_GREETING = r"(?:(?i:hi|hello|hey|good\s+(?:morning|afternoon|evening))(?:\s+[A-Z][\w'-]*)?[,.!]?\s*)"
_INTRO_EN: Final = re.compile(
    rf"^\s*{_GREETING}?(?i:this\s+is|it'?s|it\s+is|my\s+name\s+is)\s+[A-Z][^.?!]{{0,60}}[.!]\s+|^\s*{_GREETING}(?=\S)"
)
_INTRO_KO: Final = re.compile(
    r"^\s*(?:안녕하세요[,.!]?\s*)(?:저는\s*[^.?!]{1,30}?(?:입니다|이에요|예요|인데요)[.!,]?\s*)?"
)


def asked(question: str) -> str:
    """``question`` without the caller's greeting and self-introduction (the whole text if nothing
    else is left)."""
    rest = _INTRO_KO.sub("", _INTRO_EN.sub("", question, count=1), count=1).strip()
    return rest if any(ch.isalnum() for ch in rest) else question.strip()


_GREETING_ONLY: Final = re.compile(rf"^\s*{_GREETING}\s*$|^\s*(?:안녕하세요|여보세요)[,.!]?\s*$")
# A whole turn that only says who is calling, as a recogniser may write it: no full stop ("Hi, this is
# Alex from Acme", the audio cut right after the name), a question tune, a trailing comma; in Korean
# without "저는" ("안녕하세요, 에이스의 알렉스입니다"). Only a capitalised name after "this is" and
# at most four words after "from" / "at" / "with", so "This is urgent." and "It's about my bill" stay.
_NAME = r"[A-Z][\w'-]*\.?(?:\s+[A-Z][\w'-]*){0,3}"
_INTRO_ONLY: Final = re.compile(
    rf"^\s*{_GREETING}?(?i:this\s+is|it'?s|it\s+is|my\s+name\s+is|I'?m|I\s+am)\s+{_NAME}"
    r"(?:,?\s+(?i:calling\s+)?(?i:from|at|with|of)\s+(?:[\w'&-]+\.?\s*){1,4})?\s*[.!?,]?\s*$"
    r"|^\s*(?:안녕하세요|여보세요)[,.!]?\s*(?:저는\s*)?[^.?!]{1,30}?(?:입니다|이에요|예요)[.!]?\s*$"
)


def introduction_only(text: str) -> bool:
    """Whether ``text`` is a greeting or self-introduction with nothing asked yet ("Hi, this is Alex
    from Acme.", "Hello?", "안녕하세요, 저는 에이스의 알렉스입니다."): the question is still to come."""
    stripped = text.strip()
    if not stripped:
        return False
    if _GREETING_ONLY.match(stripped.rstrip("?")) or _INTRO_ONLY.match(stripped):
        return True
    rest = _INTRO_KO.sub("", _INTRO_EN.sub("", stripped + " ", count=1), count=1).strip()
    return rest != stripped and not any(ch.isalnum() for ch in rest)


#: Moving an appointment, said many ways, is what owners write as "reschedule" / "변경": "Can I move my
#: appointment to another day?" asks what the cancellation rule says ("cancel or reschedule"), not the
#: late-arrival rule that may "move you to the next free slot". A general verb (move, push, change)
#: counts only with a booking or its time as its object ("move my car" is no rescheduling).
#: What callers call a booking: the object of a verb of moving it.
_BOOKING_EN: Final = (
    r"appointments?|bookings?|reservations?|cleanings?|visits?|check-?ups?|sessions?|fillings?|consultations?"
)
_RESCHEDULE_EN: Final = re.compile(
    r"\b(?:postpon\w*|rebook\w*|reschedul\w*|put(?:ting)? off)\b|"
    r"\b(?:move|moving|push|pushing|shift|shifting|switch|switching|bump|bumping|change|changing)\b"
    rf"(?=(?:\s+[\w']+){{0,2}}?\s+(?:{_BOOKING_EN}|slots?|tables?|time|date|day)\b)",
    re.I,
)
_RESCHEDULE_KO: Final = re.compile(r"(?:바꾸|바꿀|바꿔|바꿨|옮기|옮길|옮겨|미루|미룰|미뤄|늦추|늦출|늦춰)[가-힣]*")
_BOOKED_KO: Final = re.compile(r"예약|진료|시간|날짜|일정")


def _rescheduling_ko(question: str) -> bool:
    return bool(_BOOKED_KO.search(question) and _RESCHEDULE_KO.search(question))


#: A booking moved to another time ("move my Wednesday cleaning to Friday", "push back my consultation a
#: couple of weeks", "예약을 금요일로 바꿀"), not a detail of it changed ("the name on my appointment").
_MOVED_WHEN_EN: Final = re.compile(
    r"\b(?:today|tomorrow|tonight|next|later|earlier|another|other|different|weeks?|months?|days?|dates?|times?|"
    r"mornings?|afternoons?|evenings?|back|forward|" + "|".join(_WEEKDAYS_EN) + r")\b|\d",
    re.I,
)
_MOVED_WHEN_KO: Final = re.compile(r"날짜|시간|요일|다음|주로|달로|오전|오후|내일|모레|오늘|\d")
_BOOKED_EN: Final = re.compile(rf"\b(?:{_BOOKING_EN})\b", re.I)
#: Rescheduling with no object, or only "it" ("How do I reschedule?", "can I reschedule it?").
_BARE_RESCHEDULE_EN: Final = re.compile(r"\breschedul\w*(?:\s+it)?\s*(?:[,.?!]|$|\bwithout\b|\bif\b)", re.I)
#: A passage that tells how bookings are moved: "to cancel or reschedule", "How do I change an
#: appointment?", "예약 취소나 변경"; not "we may have to move you to the next free slot".
_TELLS_RESCHEDULING: Final = re.compile(
    r"\breschedul\w*|\b(?:change|move)s?\s+(?:an?\s+|your\s+|the\s+|my\s+)?(?:appointment|booking|reservation)s?\b|"
    r"변경|(?:예약|일정)(?:을|를)?\s*(?:바꾸|바꿔|옮기|옮겨)",
    re.I,
)


def moves_booking(question: str) -> bool:
    """Whether ``question`` asks to move a booking to another time (in the owners' words, "reschedule" /
    "변경": :func:`restated`)."""
    if is_korean(question):
        booked = "예약" in question or "진료" in question
        return _rescheduling_ko(question) and booked and bool(_MOVED_WHEN_KO.search(question))
    if "reschedule" not in restated(question).lower():
        return False
    return bool(_BOOKED_EN.search(question) and _MOVED_WHEN_EN.search(question) or _BARE_RESCHEDULE_EN.search(question))


def tells_rescheduling(text: str) -> bool:
    """Whether a passage tells how bookings are moved (see :data:`_TELLS_RESCHEDULING`)."""
    return bool(_TELLS_RESCHEDULING.search(text))


#: Asking to have a booking another day with no verb of moving ("Can we do his appointment another
#: day?", "Can I have my appointment at another time?") is rescheduling too; "make", "book" or "get"
#: an appointment another day is booking one.
_ANOTHER_DAY_EN: Final = re.compile(
    rf"\b(?:do|have)\b(?=(?:\s+[\w']+){{0,2}}?\s+(?:{_BOOKING_EN})\b(?:\s+[\w']+){{0,2}}?\s+"
    r"(?:another|a different|a later|some other|other)\s+(?:day|date|time|week|slot)s?\b)",
    re.I,
)
#: What something will "run me" or "set us back" is what it costs ("What's whitening gonna run me?"):
#: only after a word that makes it a question of the future or of a price ("gonna", "would", "does").
_COSTS_EN: Final = re.compile(
    r"\brun\s+(?:me|us|you)\b(?!\s+(?:through|over|by|to|up|down|out|in)\b)|\bset\s+(?:me|us|you)\s+back\b", re.I
)
_COST_CONTEXT_EN: Final = re.compile(r"\b(?:gonna|going to|will|would|does|did|'ll)\b", re.I)
#: A time of the clock said in words ("quarter to six", "half past one"), written as the knowledge
#: writes times ("5:45", "1:30"): the models read a time, not a quarter of something and a number.
_CLOCK_WORDS_EN: Final = re.compile(
    r"\b(quarter|half)\s+(past|pass|passed|after|to|till|til|before)\s+"
    r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|1[0-2]|[1-9])\b",
    re.I,
)


def _clock(match: re.Match[str]) -> str:
    part, relation, hour_word = (g.lower() for g in match.groups())
    hour = int(_NUMBER_WORDS.get(hour_word, hour_word))
    minutes = 30 if part == "half" else 15
    if relation in ("past", "pass", "passed", "after"):  # "pass": how a recogniser may spell "past one"
        return f"{hour}:{minutes:02d}"
    if part == "half":  # "half to six" is not said
        return match.group(0)
    return f"{(hour - 2) % 12 + 1}:{60 - minutes:02d}"


def restated(question: str) -> str:
    """``question`` with everyday phrasings in the owners' words: moving a booking as "reschedule" /
    "변경" (the models put "move my appointment to another day" next to the late-arrival rule's "move
    you … to another day"), what something will "run me" as what it will "cost", and a time said in
    words as digits ("quarter to six": "5:45"). The key words, the search's embedding and the gate's
    second model all read it so (:func:`for_models` adds what a word stands for)."""
    question = _RESCHEDULE_EN.sub("reschedule", question)
    question = _ANOTHER_DAY_EN.sub("reschedule", question)
    if _COST_CONTEXT_EN.search(question):
        question = _COSTS_EN.sub("cost", question)
    question = _CLOCK_WORDS_EN.sub(_clock, question)
    if _rescheduling_ko(question):
        question = _RESCHEDULE_KO.sub("변경", question)
    return question


#: A caller's word for what owners write as a phrase, spelt out for the models beside it ("walk-in":
#: "without an appointment or reservation"); the key words match the phrase itself (:data:`_PHRASED`).
_GLOSSES: Final = ((re.compile(r"\bwalk(?:ing)?[- ]?ins?\b", re.I), "without an appointment or reservation"),)


def for_models(question: str) -> str:
    """What the search's embedding and the gate's second model read: :func:`restated`, with the
    everyday words of :data:`_GLOSSES` spelt out beside them ("Do you take walk-ins?": "Do you take
    walk-ins (without an appointment or reservation)?")."""
    question = restated(question)
    for pattern, gloss in _GLOSSES:
        question = pattern.sub(rf"\g<0> ({gloss})", question)
    return question


def key_terms(question: str) -> list[str]:
    """The stemmed content words of a question, in order, without repeats (:func:`restated` first)."""
    terms = []
    for word in words(restated(question)):
        if word in _STOP_EN or word in _STOP_KO or word.isdigit() and len(word) > 4:
            continue
        stemmed = stem(word)
        if stemmed in _STOP_KO or stemmed in _STOP_EN or len(stemmed) < 2 and not _HANGUL.search(stemmed):
            continue
        terms.append(stemmed)
    return list(dict.fromkeys(terms))


#: What may follow a text's word in a question's word that still means it ("reserv" + "ation", "book" +
#: "ings"): an ending, not another word ("open" does not cover "opentable").
_ENDINGS: Final = frozenset("e s es ed er ers ing ings ion ions ation ations al ly ment ments y ic ist ists".split())


def covers(term: str, text_stems: set[str], text: str) -> bool:
    """Whether ``text`` (its stems, and its raw form for Korean) contains ``term``."""
    if term in text_stems:
        return True
    if _HANGUL.search(term):  # agglutinative: a stem inside a longer word ("주차" in "주차장은")
        return len(term) >= 2 and term in text
    return any(
        len(term) >= 4 and (s.startswith(term) or len(s) >= 4 and term.startswith(s) and term[len(s) :] in _ENDINGS)
        for s in text_stems
    )


def weekdays(text: str) -> set[str]:
    """The days ``text`` names or spans, as English weekday names."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    found = {day for day in _WEEKDAYS_EN if day in lowered}
    for word, days in _COVERED_BY.items():
        if word in lowered:
            found |= days
    for index, name in enumerate(_WEEKDAYS_KO):
        if f"{name}요일" in lowered:
            found.add(_WEEKDAYS_EN[index])
    ranges = re.findall(
        r"(" + "|".join(_WEEKDAYS_EN) + r")\s*(?:to|through|-|–|~)\s*(" + "|".join(_WEEKDAYS_EN) + ")", lowered
    )
    ranges += [
        (_WEEKDAYS_EN[_WEEKDAYS_KO.index(a)], _WEEKDAYS_EN[_WEEKDAYS_KO.index(b)])
        for a, b in re.findall(r"([월화수목금토일])(?:요일)?\s*[~\-–부]\S*\s*([월화수목금토일])", lowered)
    ]
    for first, last in ranges:
        start, end = _WEEKDAYS_EN.index(first), _WEEKDAYS_EN.index(last)
        found |= set(_WEEKDAYS_EN[start : end + 1]) if start <= end else set()
    return found


_ASKED: Final = {"price": _PRICE_Q, "time": _TIME_Q, "place": _PLACE_Q, "phone": _PHONE_Q}
_STATED: Final = {"price": _PRICE_A, "time": _TIME_A, "place": _PLACE_A, "phone": _PHONE_A}


#: The word for a street address in a question, and the addresses that are not one (e-mail, web).
_ADDRESS_Q: Final = re.compile(r"\baddress(?:es)?\b|주소", re.I)
_OTHER_ADDRESS: Final = re.compile(
    r"\b(?:e-?mail|mail|web|website|site|ip|mac|ethereum|bitcoin|wallet)\s*address|(?:이메일|메일|홈페이지|웹|사이트|블로그)\s*주소",
    re.I,
)
#: A street address as businesses write it: "45 Seocho-daero 77-gil", "123 Main Street", "서초대로77길 45",
#: "마포구 동교로 25", "역삼동 123-4번지". A Korean road name is one after its district, or one with a
#: numbered 길: "버스로 5~10분" and "택시로 10, 15분" are not addresses.
_STREET: Final = re.compile(
    r"(?:[가-힣](?:시|구|군)\s+[가-힣0-9]+(?:로|길)|[가-힣]+로\d+(?:번)?길)\s?\d+(?:-\d+)?(?![\d가-힣~])|"
    r"\d+(?:-\d+)?\s*번지|"
    r"\b\d+[A-Za-z]?(?:-\d+)?\s+[A-Z][\w'-]*?(?:\s+[A-Z][\w'-]*)*?[- ]"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Boulevard|Blvd|Lane|Ln|Drive|Way|Place|Square|ro|gil|daero)\b"
)
#: What a caller says around "your address" besides the place itself: asking, sending, where it goes,
#: and the kind of business it is ("the clinic's address" is the address of the business called).
_ADDRESS_CONTEXT_EN: Final = frozenset(
    """address addresses street full exact exactly give send text email get know need put want please could
    would navigation gps satnav nav map maps app directions clinic office restaurant studio shop store practice
    company business place building""".split()
)
_ADDRESS_CONTEXT_KO: Final = (
    "주소", "알려", "불러", "가르쳐", "말씀", "말해", "보내", "찍", "내비", "네비", "지도", "문자", "정확", "어떻게",
    "되", "돼", "어디", "거기", "여기", "그쪽", "주시", "주실", "주세", "있", "치과", "병원", "식당", "가게",
    "사무실", "스튜디오", "회사", "매장", "업체",
)  # fmt: skip


#: A heading or FAQ question an owner files the business's whereabouts under.
_PLACE_TOPIC: Final = re.compile(
    r"\baddress\b|\blocat(?:ion|ed)\b|\bdirections?\b|\bfind us\b|\bget (?:here|there)\b|\bmap\b|\bwhere\b|"
    r"주소|위치|오시는\s*길|찾아오|약도|지도|어디",
    re.I,
)


def place_topic(heading: str) -> bool:
    """``heading`` (a passage's heading or FAQ question) is about where the business is."""
    return bool(_PLACE_TOPIC.search(heading))


def is_korean(text: str) -> bool:
    """More of ``text``'s letters are Hangul than Latin (a Korean sentence may name "Kakao Pay")."""
    hangul = len(_HANGUL.findall(text))
    return hangul > 0 and hangul >= len(re.findall(r"[A-Za-z]", text))


def asks_address(question: str) -> bool:
    """The question asks for the business's street address ("What's your address?", "주소 좀 알려 주세요"),
    not an e-mail or web address."""
    return bool(_ADDRESS_Q.search(_OTHER_ADDRESS.sub(" ", question)))


def states_address(text: str) -> bool:
    """The text states a street address."""
    return bool(_STREET.search(text))


def address_answers(question: str, text: str) -> bool:
    """Whether ``text``, a passage that states a street address, answers ``question``, which asks for
    one: every word the question says besides asking for it (a branch, a city, "head office", an
    e-mail) is in the passage. The embedding models rank an address by its words, and a street address
    has none of a question's ("What's your address?" finds the address passage 8th of 27); this
    check reads it instead."""
    if not asks_address(question) or not states_address(text):
        return False
    stems = {stem(w) for w in words(text)}
    context_en = {stem(w) for w in _ADDRESS_CONTEXT_EN}
    for word in words(_OTHER_ADDRESS.sub(" ", question)):
        if word.startswith(_ADDRESS_CONTEXT_KO):  # a Korean word as said ("치과가"): its stem may be shorter
            continue
        if any(not covers(term, stems, text.lower()) and term not in context_en for term in key_terms(word)):
            return False
    return True


#: Asking when, in a Korean question about moving a booking (whose days are only where it goes: "목요일
#: 예약을 다음 주 화요일로 옮길 수 있을까요?" asks whether, not for a time).
_WHEN_KO: Final = re.compile(r"몇\s*시|언제")
#: An English question that asks for a time: when, the hours, being open or there ("Can I come in
#: on a Tuesday afternoon?", "Is Dr. Park in on Mondays?"), a day asked for ("which days?"). One that
#: only names a day or a part of one ("Do you have a kids' menu on weekends?", "Are walk-ins okay on
#: a weekday morning?") asks about something else, which a passage need not time.
_ASKS_WHEN_EN: Final = re.compile(
    r"\bwhen\b|what time|\bhours?\b|\bopen\b|\bclose[sd]?\b|\buntil\b|\btill\b|\blatest\b|\bearliest\b|"
    r"\bhow (?:early|late|long|soon)\b|\b(?:what|which) (?:days?|dates?|weekdays?|nights?|evenings?|mornings?)\b|"
    r"\bcome in\b|\bstill\b|\bserv(?:e|es|ing)\b|\bwork(?:s|ing)?\b|\bin on\b|\bavailable\b",
    re.I,
)


def answer_types(question: str) -> set[str]:
    """What kinds of answer the question asks for (empty: no particular kind)."""
    kinds = {kind for kind, pattern in _ASKED.items() if pattern.search(question)}
    if "time" in kinds and not _asks_when(question):
        kinds.discard("time")
    return kinds


def _asks_when(question: str) -> bool:
    """Whether a question that names a time asks for one (see :data:`_ASKS_WHEN_EN`); in Korean, any
    but one that moves a booking without asking when (:data:`_WHEN_KO`)."""
    if is_korean(question):
        return not _rescheduling_ko(question) or bool(_WHEN_KO.search(question))
    return bool(_ASKS_WHEN_EN.search(question))


def passage_types(text: str) -> set[str]:
    """What kinds of answer a passage states."""
    return {kind for kind, pattern in _STATED.items() if pattern.search(text)}


#: A question for a time of the clock ("What time …?", "몇 시 …?"; not "how early", which may ask how far
#: ahead: "How early should I call?"), which a passage that
#: names only days does not answer ("Dr. Choi works on Thursdays" for "목요일에는 몇 시까지 해요?").
_CLOCK_Q: Final = re.compile(r"what time|몇\s*시", re.I)
_CLOCK_A: Final = re.compile(
    r"\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)|\d{1,2}:\d{2}|\bnoon\b|\bmidnight\b|오전|오후|\d{1,2}\s*시", re.I
)


def clock_missing(question: str, text: str) -> bool:
    """``question`` asks for a time of the clock and ``text`` states none."""
    return bool(_CLOCK_Q.search(question)) and not _CLOCK_A.search(text)


_NUMBER_WORDS: Final = {
    word: str(n)
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"half an": "0.5", "a half": "0.5", "an": "1", "a": "1", "한": "1", "두": "2", "세": "3", "네": "4", "다섯": "5"}
_UNITS: Final = {
    "minute": "minute", "min": "minute", "hour": "hour", "hr": "hour", "day": "day", "night": "night",
    "week": "week", "month": "month", "year": "year", "visit": "visit", "session": "session",
    "person": "person", "people": "person",
    "분": "minute", "시간": "hour", "일": "day", "박": "night", "주": "week", "개월": "month", "달": "month",
    "년": "year", "회": "session", "번": "session", "명": "person",
}  # fmt: skip


def _alternatives(words: list[str]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


def _amount(group: str) -> str:
    """An amount ("two hours", "2 hrs", "두 시간", "2시간") with its number and unit in named groups."""
    english = [w for w in _NUMBER_WORDS if not _HANGUL.search(w)]
    korean = [w for w in _NUMBER_WORDS if _HANGUL.search(w)]
    units_en = [u for u in _UNITS if not _HANGUL.search(u)]
    units_ko = [u for u in _UNITS if _HANGUL.search(u)]
    return (
        rf"(?:\b(?P<n{group}>\d+(?:\.\d+)?|{_alternatives(english)})\s*(?P<u{group}>{_alternatives(units_en)})"
        rf"(?:e?s)?\b|(?P<k{group}>\d+|{_alternatives(korean)})\s*(?P<v{group}>{_alternatives(units_ko)}))"
    )


# "after the first two hours", "beyond 3 days", "more than 2 hours", "2시간 이후", "2시간 넘으면", "2시간 초과"
_BEYOND: Final = re.compile(
    r"\b(?:after|beyond|past|over|longer than|more than|exceeding|exceeds?|additional|extra)\s+"
    rf"(?:the\s+)?(?:first\s+|initial\s+)?{_amount('0')}"
    rf"|{_amount('1')}\s*(?:이후|후에?|넘(?:으면|어가면|게|는)|초과|지나(?:면|서))",
    re.I,
)
# "up to 2 hours", "for 2 hours", "for the first 2 hours", "within 3 days", "2시간까지", "2시간 이내", "최대 2시간"
_LIMIT: Final = re.compile(
    rf"\b(?:up to|for|first|within|at most|maximum of|max\.?)\s+{_amount('0')}"
    rf"|(?:최대|처음|첫)\s*{_amount('1')}|{_amount('2')}\s*(?:까지|이내|동안\s*무료)",
    re.I,
)


def _amounts(pattern: re.Pattern[str], text: str) -> set[tuple[str, str]]:
    """The (number, unit) pairs of ``pattern``'s matches in ``text`` ("two hours" -> ("2", "hour"))."""
    found = set()
    for match in pattern.finditer(unicodedata.normalize("NFKC", text)):
        for name, value in match.groupdict().items():
            if value and name[0] in "nk":
                unit = match.group(("u" if name[0] == "n" else "v") + name[1:]).lower()
                found.add((_NUMBER_WORDS.get(value.lower(), value), _UNITS[unit]))
    return found


def past_limit(question: str, passage: str) -> set[tuple[str, str]]:
    """The amounts ``question`` asks beyond that ``passage`` states only as a limit: asked "How much
    is parking after the first two hours?", a passage saying "patients park free for up to 2 hours"
    states the first two hours and nothing after them ({("2", "hour")}). Empty when the passage also
    says what comes after ("after 2 hours, 1,000 won per 30 minutes")."""
    beyond = _amounts(_BEYOND, question)
    if not beyond:
        return set()
    return (beyond & _amounts(_LIMIT, passage)) - _amounts(_BEYOND, passage)


_SENTENCE_END: Final = re.compile(r"(?<![DM]r\.)(?<!Mrs\.)(?<![MS][st]\.)(?<=[.?!;:])\s+|\n+")
_NAME_WORD: Final = re.compile(r"(?:Dr|Mr|Mrs|Ms|St)\.|[A-Z][\w'’]*(?:-[\w'’]+)*")
_TOKEN: Final = re.compile(r"(?:Dr|Mr|Mrs|Ms|St)\.|[\w'’]+(?:-[\w'’]+)*|[^\w\s]")
_COMMON_NAMES: Final = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays fridays "
    "saturdays sundays january february march april may june july august september october november december "
    "i i'm a.m p.m am pm ok".split()
)


def proper_names(texts: list[str], max_chars: int = 240) -> list[str]:
    """The capitalised names in ``texts`` (English; Hangul has no case), most used first, up to
    ``max_chars`` in all: a run of capitalised words ("Hanbit Building", "Dr. Minsu Park"), but not
    a lone capitalised word that only starts a sentence ("We", "Take"), nor weekday or month names.
    """
    counts: dict[str, int] = {}

    def count(run: list[str], first: bool) -> None:
        """``run``: capitalised words in a row; ``first``: it starts its sentence."""
        if run and first and run[0].lower() in _STOP_EN:
            run = run[1:]  # "On Thursdays", "The Hanbit Building": a sentence's first word
        elif run and first and len(run) == 1:
            run = []  # "We", "Take": capitalised only because a sentence starts with it
        name = re.sub(r"['’]s$", "", " ".join(run))
        if len(name) >= 3 and not all(word.lower() in _COMMON_NAMES for word in run):
            counts[name] = counts.get(name, 0) + 1

    for text in texts:
        for sentence in _SENTENCE_END.split(text):
            tokens = _TOKEN.findall(sentence)
            run: list[str] = []
            for index, token in enumerate([*tokens, ""]):
                if token and _NAME_WORD.fullmatch(token):
                    if run and token.rstrip(".").lower() in _PERSON_TITLES:
                        # a title starts a name: "Ask Dr. Lee", "Best Dr. Minsu Park" (a recogniser's
                        # "Does") are a word and a name
                        count(run, index - len(run) == 0)
                        run = []
                    run.append(token)
                    continue
                count(run, index - len(run) == 0)
                run = []
    names: list[str] = []
    used = 0
    for name in sorted(counts, key=lambda n: -counts[n]):  # stable: ties keep their first appearance
        if used + len(name) + 2 > max_chars:
            break
        names.append(name)
        used += len(name) + 2
    return names


_TITLES: Final = frozenset({"dr", "mr", "mrs", "ms", "st"})
_PERSON_TITLES: Final = _TITLES - {"st"}  # "St." also ends a street's name ("Main St.")
_CONTRACTION: Final = re.compile(r"['’](?:d|ll|s|ve|re|m)$")
# Words no name is made of: one with a capital inside a sentence means the text is title-cased.
_FUNCTION_WORDS: Final = frozenset(
    """
a an the and or but of for to from in on at by with is are was were be do does did can could will would
should much many how what when where who which why this that these those it its my your our their me you
""".split()
)


def named(question: str) -> list[str]:
    """The stemmed words of the names ``question`` says (English; Hangul has no case): "Does Dr. Lee
    speak English?" -> ``["lee", "english"]``, titles, weekdays and months left out (weekdays have
    their own check). A knowledge base that never mentions a name knows nothing about it: a passage
    about Dr. Lee's days does not say which languages she speaks.

    Empty when the text is title-cased ("How Much For White Feeling": the recogniser capitalises
    every word of some short utterances), where capitals say nothing.
    """
    for sentence in _SENTENCE_END.split(question):
        later = [t for t in _TOKEN.findall(sentence) if t[0].isalpha()][1:]
        if any(t[0].isupper() and t.lower() in _FUNCTION_WORDS for t in later):
            return []  # "How Much For": a capitalised word no name is
    found: list[str] = []
    for name in proper_names([question], max_chars=10_000):
        for word in words(name):
            word = _CONTRACTION.sub("", word)  # "Is Dr. Lee'd in?": whisper's "Dr. Lee in"
            if word not in _TITLES and word not in _COMMON_NAMES:
                found.append(stem(word))
    return list(dict.fromkeys(found))


def without_business(question: str, business: str) -> str:
    """``question`` without the callee's business name ("Is Smile Tree open on Saturdays?" ->
    "Is open on Saturdays?" for "Smile Tree Dental Clinic"): every passage of the callee's knowledge
    is about the business, so its name is no topic a passage must cover, and no unknown name.

    A mention is two or more of the name's words in a row ("Smile Tree", "스튜디오 하늘"), or one that
    can only be the name: capitalised ("Onggi"), or a Korean word that is the name or a part of it
    with its particles ("스마일트리치과에서", "스마일트리"). A lone common word of the name stays ("Do
    you have a table for six?" at Onggi Table asks about a table).
    """
    name = {stem(w) for w in words(business)}
    if not name or not question:
        return question
    korean = [w for w in name if _HANGUL.search(w) and len(w) >= 3]

    def part(token: str) -> bool:
        stemmed = stem(token.lower().replace("’", "'"))
        if stemmed in name:
            return True
        if not _HANGUL.search(token) or len(stemmed) < 3:
            return False
        # "스마일트리치과에서도" (particles the stem keeps), "스마일트리" (the name shortened)
        return any(token.startswith(w) or w.startswith(stemmed) for w in korean)

    normal = unicodedata.normalize("NFKC", question)
    tokens = list(_WORD.finditer(normal))

    def alone(index: int) -> bool:
        """A lone word of the name that is the name: capitalised inside a sentence and not part of
        another name ("Is Onggi open?"; not "Dental cleaning price?", nor the "Lee" of "Dr. Lee" or
        "Minsu Lee"), or Korean of three syllables or more ("스마일트리", not "하늘")."""
        text = tokens[index].group()
        if _HANGUL.search(text):
            return len(stem(text)) >= 3
        return (
            capitalised(index)
            and stem(text.lower()) not in _STOP_EN
            and not (index > 0 and (capitalised(index - 1) or tokens[index - 1].group().lower() in _TITLES))
            and not (index + 1 < len(tokens) and tokens[index + 1].group()[0].isupper())
        )

    def capitalised(index: int) -> bool:
        """Capitalised, and not only because a sentence starts with it."""
        before = normal[: tokens[index].start()].rstrip()
        return tokens[index].group()[0].isupper() and bool(before) and before[-1] not in ".?!"

    cut: list[tuple[int, int]] = []
    index = 0
    while index < len(tokens):
        end = index
        while end < len(tokens) and part(tokens[end].group()):
            end += 1
        # words that carry the name: "the" of "The Noodle Bar" does not make "the noodle soup" the name
        named_by = [i for i in range(index, end) if stem(tokens[i].group().lower()) not in _STOP_EN]
        if len(named_by) >= 2 or len(named_by) == 1 and alone(named_by[0]):
            cut.append((tokens[index].start(), tokens[end - 1].end()))
        index = max(end, index + 1)
    if not cut:
        return question
    kept, at = [], 0
    for start, end in cut:
        kept.append(normal[at:start])
        at = end
    kept.append(normal[at:])
    return re.sub(r"\s{2,}", " ", "".join(kept)).strip()


#: Everyday words callers and owners use for the same thing ("kids" / "children", "elevator" / "lift",
#: "애들" / "어린이"): a passage that says one covers a question that says another. Only words that name
#: the same thing in any business; a model's word vectors (the gate's ``soft``) weigh the rest.
_SYNONYMS: Final = (
    "kid kids child children toddler",
    "elevator elevators lift lifts",
    "dog dogs puppy puppies",
    "monitor screen tv display",
    "restroom toilet bathroom washroom",
    "parcel package courier",
    "bill invoice",
    "doctor dentist",
    "아이 아이들 애들 어린이 자녀 키즈",
    "엘리베이터 승강기",
    "강아지 반려견",
    "모니터 화면",
    "택배 소포",
    "의사 원장",
)


def _synonym_table() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for group in _SYNONYMS:
        stems = frozenset(stem(word) for word in group.split())
        for word in stems:
            table[word] = stems - {word}
    return table


_SYNONYM_OF: Final = _synonym_table()


#: A word callers use for what owners write as a phrase: a "walk-in" is coming without an appointment
#: or a reservation ("Patients without an appointment are seen only if a chair is free.", "Visits are
#: by appointment only.", "No reservations needed."), in any business.
_PHRASED: Final = {
    "walk-in": re.compile(
        r"\bwithout (?:an? )?(?:appointment|reservation|booking)|\bappointments? only\b"
        r"|\bno (?:appointment|reservation|booking)s? (?:is |are )?(?:needed|necessary|required)\b"
    ),
}


def synonyms(term: str) -> frozenset[str]:
    """The other stems of ``term``'s everyday synonyms (:data:`_SYNONYMS`), empty for most words."""
    return _SYNONYM_OF.get(term, frozenset())


def mentions(term: str, text_stems: set[str], text: str) -> bool:
    """Whether ``text`` says ``term`` (:func:`covers`), one of its everyday synonyms, or the phrase it
    stands for (:data:`_PHRASED`; ``text`` lowercased)."""
    phrased = _PHRASED.get(term)
    if phrased is not None and phrased.search(text):
        return True
    return any(covers(t, text_stems, text) for t in (term, *synonyms(term)))


# "Do you have X?", "Is there X?", "Does the meeting room have X?", "X 있어요?": the thing asked about.
_HAVE_EN: Final = re.compile(
    r"\b(?:do|does)\s+(?:you(?:\s+guys)?|(?:the|your|this|that)\s+[\w'-]+(?:\s+[\w'-]+)?|it|they)\s+have\s+"
    r"(?:got\s+)?(?P<have>[^.?!,;:]+)|\b(?:is|are)\s+there\s+(?P<there>[^.?!,;:]+)|\bhave\s+you\s+got\s+(?P<got>[^.?!,;:]+)",
    re.I,
)
#: Where the thing's noun phrase ends: a preposition, a clause or a pronoun ("a screen | in the meeting
#: room", "an emergency number | I can call").
_THING_END_EN: Final = frozenset(
    """in on at for to near with by from inside outside that which who where when while i we you he she they
    it my me so because if than available nearby around here there today tomorrow tonight now please""".split()
)
_HAVE_KO: Final = re.compile(
    r"(?P<before>[^.?!,]*?)\s*있(?:어요|나요|습니까|을까요|는지|죠|니|으세요|으신가요|으신지|어)(?![가-힣])"
)
#: A Korean word that says where, not what ("회의실에", "건물 안에", "거기엔"): the thing is after it.
_WHERE_KO: Final = re.compile(r"(?:에|에서|에는|에도|엔|에선|안|쪽|근처)$")
#: Words that name no thing of their own in "do you have a … space?": the word before them is the
#: thing ("a parking space", "주차 공간", "an emergency number").
_GENERIC: Final = frozenset(
    """space spot place area option service facility number line availability slot appointment
    공간 자리 곳 서비스 시설 번호""".split()
)


#: A detail of a booking changed ("the phone number on my appointment", "예약자 연락처 변경"), which a
#: passage on moving or cancelling bookings does not name (:func:`detail_missing`). Its day or time is
#: moving it (:func:`moves_booking`), not a detail.
_DETAIL_EN: Final = re.compile(
    r"\b(?:change|changing|update|updating|correct|fix|edit)\s+(?:the|my|our)\s+(?P<detail>[\w' -]+?)\s+"
    rf"(?:on|of|for|in|under)\s+(?:my|our|the)\s+(?:{_BOOKING_EN})\b",
    re.I,
)
_DETAIL_KO: Final = re.compile(
    r"예약(?:자|자의|한|할\s*때\s*적은|할\s*때\s*쓴|에\s*적은)?\s+(?P<detail>[가-힣]+?)(?:을|를|도|은|는)?\s*"
    r"(?:바꾸|바꿀|바꿔|변경|수정|고칠|고쳐)"
)
_WHEN_DETAIL: Final = re.compile(r"^(?:day|date|time|hour|week|slot|날짜|날|시간|요일|일정|시각)s?$", re.I)


def _booking_detail(question: str) -> str | None:
    """The stem of the detail of a booking ``question`` changes (:data:`_DETAIL_EN`), or None."""
    match = _DETAIL_EN.search(question) or _DETAIL_KO.search(question)
    if match is None:
        return None
    details = [w for w in words(match.group("detail")) if not _WHEN_DETAIL.match(w)]
    if len(details) != len(words(match.group("detail"))):
        return None  # the day or time of a booking: moving it
    found = [t for t in key_terms(" ".join(details)) if t not in _GENERIC]
    return found[-1] if found else None


def detail_missing(question: str, text: str) -> bool:
    """``question`` asks to change a detail of a booking ("Can I update the phone number on my
    appointment?", "예약자 이름을 바꿀 수 있나요?") that ``text`` does not name: however alike the two sound
    ("call us to cancel or change an appointment"), it says nothing of that detail."""
    detail = _booking_detail(question)
    if detail is None:
        return False
    return not mentions(detail, {stem(w) for w in words(text)}, text.lower())


def thing_asked(question: str) -> str | None:
    """The stem of the thing a "do you have … / is there … / … 있어요?" question asks about
    ("whiteboard" in "Does your meeting room have a whiteboard?", "놀이방" in "아이들 놀이방 있어요?",
    "parking" in "Do you have a parking space?"), or None (another kind of question, or it names no
    thing: "Is there anything I should bring?")."""
    phrase: list[str] = []
    match = _HAVE_EN.search(question)
    if match:
        for word in words(next(g for g in match.groups() if g)):
            if word in _THING_END_EN:
                break
            phrase.append(word)
    else:
        korean = _HAVE_KO.search(question)
        if not korean:
            return None
        before = korean.group("before").split()
        if before and (before[-1] == "수" or _doing_place(before)):
            return None  # "빌릴 수 있어요?" asks what can be done; "주차할 데 있어요?" where to do it
        for word in reversed(before[-3:]):
            if _WHERE_KO.search(word) and phrase:
                break
            if _WHERE_KO.search(word):
                return None
            phrase.insert(0, word)
    things = [t for t in key_terms(" ".join(phrase)) if t not in _GENERIC]
    return things[-1] if things else None


def _doing_place(before: list[str]) -> bool:
    """``before`` ends with a place to do something: "주차할 데", "연락할 곳이" (a verb's ㄹ form, then 데 / 곳)."""
    if len(before) < 2 or stem(before[-1]) not in ("데", "곳") or not _HANGUL.search(before[-2][-1]):
        return False
    return (ord(before[-2][-1]) - 0xAC00) % 28 == 8  # the syllable ends in ㄹ


def thing_missing(question: str, text: str) -> bool:
    """``question`` asks whether there is a thing (:func:`thing_asked`) that ``text`` does not name,
    nor an everyday synonym of it: a meeting room's passage with "a TV screen and an HDMI cable" does
    not answer "Does the meeting room have a whiteboard?", however close the two sound."""
    thing = thing_asked(question)
    if thing is None:
        return False
    # a hyphenated word names its parts too: "mul-naengmyeon" is a naengmyeon
    stems = {stem(part) for w in words(text) for part in (w, *w.split("-"))}
    return not mentions(thing, stems, text.lower())


#: "today", "right now", "오늘", "지금": a question about the day of the call.
_TODAY_Q: Final = re.compile(r"\btoday\b|\bright now\b|\bat the moment\b|오늘|지금|현재", re.I)
_EVERY_DAY: Final = re.compile(r"\bdaily\b|\bevery\s*day\b|\bholidays?\b|매일|연중|공휴일|휴무|명절", re.I)


def today_missing(question: str, text: str) -> bool:
    """``question`` asks about today or right now ("Is Junho in today?", "Is the car park full right
    now?", "지금 통화 가능하세요?") and ``text`` names no day: a passage can only answer for the day of
    the call by the days it states ("Dr. Park works on Tuesdays and Thursdays"); one that names none
    (who Junho is, where to park) says nothing of today."""
    return bool(_TODAY_Q.search(question)) and not weekdays(text) and not _EVERY_DAY.search(text)
