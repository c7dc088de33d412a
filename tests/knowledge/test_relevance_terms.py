"""The text rules of the relevance gate: key words, answer types, weekdays (Korean and English)."""

from __future__ import annotations

import pytest

from knowledge.retrieval import terms


def test_key_terms_drop_the_padding_of_a_phone_question_and_stem_the_rest() -> None:
    assert terms.key_terms("Hi, um, I was wondering if you could tell me whether you see kids?") == ["kid"]
    assert terms.key_terms("How much do the ceramic braces cost?") == ["ceramic", "brace"]
    assert terms.key_terms("주차는 어디에 하면 돼요?") == ["주차", "하면"]


def test_a_korean_title_with_its_honorific_is_the_title_the_knowledge_writes() -> None:
    # a caller says "실장님", "대표님이", a passage "김준호 실장은", "이지영 대표는"
    passage = "김준호 실장은 브랜드 아이덴티티와 패키지 디자인 담당입니다."
    stems = {terms.stem(w) for w in terms.words(passage)}
    assert terms.key_terms("김준호 실장님 계세요?")[:2] == ["김준호", "실장"]
    assert all(terms.covers(k, stems, passage) for k in ["김준호", "실장"])
    assert terms.stem("대표님이") == "대표"
    assert terms.stem("출근하셨어요") == "출근"  # an honorific past tense, like "진료하시나요" -> "진료"
    assert terms.stem("진료하시나요") == "진료"
    assert terms.stem("손님") == "손님"  # a guest: "님" is part of a two-syllable word


def test_answer_types_of_questions_and_what_passages_state() -> None:
    assert terms.answer_types("How much is a crown?") == {"price"}
    assert terms.answer_types("임플란트 가격이 얼마예요?") == {"price"}
    assert terms.answer_types("Where is the clinic?") == {"place"}
    assert "price" in terms.passage_types("A zirconia crown is 450,000 won.")
    assert "price" in terms.passage_types("스케일링은 1만 5천 원입니다.")
    assert "price" not in terms.passage_types("We are open Monday to Friday.")
    assert "phone" in terms.passage_types("Call reception at 02-555-0199.")


def test_weekdays_named_or_spanned() -> None:
    assert terms.weekdays("Open Monday to Thursday") == {"monday", "tuesday", "wednesday", "thursday"}
    assert terms.weekdays("평일 오전 9시부터") == {"monday", "tuesday", "wednesday", "thursday", "friday"}
    assert terms.weekdays("토요일과 일요일은 휴무") == {"saturday", "sunday"}
    assert terms.weekdays("closed at weekends") == {"saturday", "sunday"}


@pytest.mark.parametrize(
    ("question", "what_is_asked"),
    [
        ("Hi, this is Alex from Acme. When is the team meeting?", "When is the team meeting?"),
        ("Hi Jiyoung, it's Alex again. Are you open at the weekend?", "Are you open at the weekend?"),
        ("Hello. My name is Kim Minsu. Do you take Kakao Pay?", "Do you take Kakao Pay?"),
        ("안녕하세요, 저는 에이스의 알렉스입니다. 주차 되나요?", "주차 되나요?"),
        ("It's about my bill. How much do I owe?", "It's about my bill. How much do I owe?"),  # no name: content
        ("This is the parking question: where?", "This is the parking question: where?"),
        ("Hi.", "Hi."),  # nothing else: kept whole
    ],
)
def test_what_is_asked_leaves_out_the_callers_greeting_and_introduction(question: str, what_is_asked: str) -> None:
    assert terms.asked(question) == what_is_asked


def test_the_names_a_knowledge_base_uses_are_what_a_recogniser_should_expect() -> None:
    texts = [
        "Dr. Minsu Park is our orthodontist. He works on Tuesdays and Thursdays.",
        "The orthodontic consultation with Dr. Park is free.",
        "On Thursdays we see patients until 9 p.m.",
        "Over Seollal (Lunar New Year) and Chuseok we close. Take Line 2 to Gangnam Station.",
        "Patients park free in the Hanbit Building's car park. We accept Kakao Pay.",
        "주차는 두 시간 무료입니다.",
        "Meet Dr. Jiyoung Lee, our director.",
    ]
    names = terms.proper_names(texts)
    # titles stay with their names; a possessive is the name; sentence-initial words and weekdays are not names
    for name in (
        "Dr. Minsu Park",
        "Dr. Park",
        "Seollal",
        "Lunar New Year",
        "Chuseok",
        "Gangnam Station",
        "Dr. Jiyoung Lee",
    ):
        assert name in names, names
    assert "Hanbit Building" in names and "Kakao Pay" in names, names
    for not_a_name in (
        "He",
        "The",
        "On Thursdays",
        "Thursdays",
        "Over Seollal",
        "Patients",
        "We",
        "Ask Dr. Jiyoung Lee",
    ):
        assert not_a_name not in names, names
    # the list is bounded (a prompt has room for a few dozen names)
    assert sum(len(n) + 2 for n in terms.proper_names(texts * 50, max_chars=60)) <= 60


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("Does Dr. Lee speak English?", ["lee", "english"]),  # the title is not a name of its own
        ("Do you do Invisalign?", ["invisalign"]),
        ("Can I pay with Kakao Pay?", ["kakao", "pay"]),
        ("Is Smile Tree open on Mondays?", ["smile", "tree"]),  # weekdays have their own check
        ("Are you open on Saturday?", []),
        ("How Much for White Feeling", []),  # title-cased by the recogniser: capitals say nothing
        ("Is Dr. Park In On Thursday?", []),
        # a title starts a name: the recogniser's "Best" for "Does" before it is a sentence's first word
        ("Best Dr. Minsu Park work Mondays?", ["minsu", "park"]),
        ("Which days is Dr. Lee'd in?", ["lee"]),  # a contraction is not part of the name
        ("주차 되나요?", []),  # Hangul has no case
    ],
)
def test_the_names_a_question_says(question: str, names: list[str]) -> None:
    assert terms.named(question) == names


@pytest.mark.parametrize(
    ("question", "passage", "past"),
    [
        ("How much is parking after the first two hours?", "Patients park free for up to 2 hours.", {("2", "hour")}),
        ("Can I park for more than 2 hrs?", "Free parking for two hours in the basement.", {("2", "hour")}),
        ("주차 2시간 넘으면 얼마예요?", "주차는 최대 2시간 무료입니다.", {("2", "hour")}),
        ("두 시간 이후에는 요금이 있나요?", "2시간까지 무료입니다.", {("2", "hour")}),
        # the passage says what comes after: it answers
        ("How much is parking after the first two hours?", "Free for 2 hours; after 2 hours, 1,000 won.", set()),
        # another amount, or none asked beyond: not this rule's business
        ("Can I stay over 3 hours?", "Patients park free for up to 2 hours.", set()),
        ("How much is parking?", "Patients park free for up to 2 hours.", set()),
    ],
)
def test_past_limit_finds_a_question_about_what_comes_after_a_passages_limit(question, passage, past) -> None:
    assert terms.past_limit(question, passage) == past


@pytest.mark.parametrize(
    ("question", "answers"),
    [
        ("What's your address?", True),
        ("Can I get the restaurant's address?", True),
        ("What address should I put in my GPS app?", True),
        ("주소 좀 알려 주세요.", True),
        ("치과 주소가 정확히 어떻게 돼요?", True),  # "치과" stems to "치": the word as said is what is asked
        ("What's the address of your Busan office?", False),  # a place the passage does not name
        ("본사 주소 알려 주세요.", False),
        ("What's your email address?", False),  # not a street address
        ("홈페이지 주소가 뭐예요?", False),
        ("Where do I park?", False),  # not a question for the address
    ],
)
def test_a_question_for_the_street_address_is_answered_by_a_passage_that_states_one(question, answers) -> None:
    clinic = "Smile Tree Dental Clinic, 3rd floor, Hanbit Building, 45 Seocho-daero 77-gil, Seocho-gu, Seoul."
    korean = "서울 서초구 서초대로77길 45, 한빛빌딩 3층 스마일트리치과입니다."
    passage = korean if terms.is_korean(question) else clinic
    assert terms.address_answers(question, passage) is answers
    # a passage without a street address answers no such question, however close it sounds
    assert not terms.address_answers(question, "Take exit 9 of Gangnam station and walk five minutes.")


def test_street_addresses_as_businesses_write_them() -> None:
    streets = (
        "123 Main Street",
        "12 Seongsui-ro 7-gil",
        "서초대로77길 45",
        "서울 마포구 동교로38길 25, 1층",
        "서울 강남구 테헤란로 152",
        "역삼동 123-4번지",
    )
    for text in streets:
        assert terms.states_address(text), text
    others = (
        "Take line 2 to exit 9.",
        "2호선 강남역 9번 출구로 나오셔서 5분",
        "버스로 5~10분 걸립니다.",
        "택시로 10, 15분 정도예요.",
        "Open 9 to 6 on weekdays.",
        "3rd floor",
    )
    for text in others:
        assert not terms.states_address(text), text


def test_a_heading_about_where_the_business_is() -> None:
    for heading in (
        "Location",
        "Address",
        "How to find us",
        "오시는 길",
        "찾아오시는 길",
        "주소",
        "Where is the shop?",
    ):
        assert terms.place_topic(heading), heading
    for heading in ("Parking", "주차", "Opening hours", "Suppliers", ""):
        assert not terms.place_topic(heading), heading


@pytest.mark.parametrize(
    ("question", "business", "left"),
    [
        ("Is Smile Tree open on Saturdays?", "Smile Tree Dental Clinic", "Is open on Saturdays?"),
        ("What's Smile Tree's address?", "Smile Tree Dental Clinic", "What's address?"),
        ("Is Onggi open on Sundays?", "Onggi Table", "Is open on Sundays?"),
        ("스마일트리치과에서 아이들도 봐 주나요?", "스마일트리치과", "아이들도 봐 주나요?"),
        ("스마일트리 토요일 진료해요?", "스마일트리치과", "토요일 진료해요?"),  # the name shortened
        ("스튜디오 하늘 로고 비용이요?", "스튜디오 하늘", "로고 비용이요?"),
        # a lone common word of the name is what the caller asks about, not the name
        ("Do you have a table for six?", "Onggi Table", "Do you have a table for six?"),
        ("Is the noodle soup spicy?", "The Noodle Bar", "Is the noodle soup spicy?"),
        ("Is The Noodle Bar open late?", "The Noodle Bar", "Is open late?"),
        ("Dental cleaning price?", "Smile Tree Dental Clinic", "Dental cleaning price?"),
        ("하늘이 보이는 자리 있어요?", "스튜디오 하늘", "하늘이 보이는 자리 있어요?"),
        # and so is another person of the same name
        ("Is Minsu Lee in today?", "Jiyoung Lee Design", "Is Minsu Lee in today?"),
        ("Is Dr. Lee in today?", "Lee Dental", "Is Dr. Lee in today?"),
        ("Is Smile Tree open?", "", "Is Smile Tree open?"),
    ],
)
def test_the_business_name_is_taken_out_of_a_question(question: str, business: str, left: str) -> None:
    assert terms.without_business(question, business) == left


def test_everyday_synonyms_name_the_same_thing_in_both_directions() -> None:
    assert "child" in terms.synonyms(terms.stem("kids")) and "kid" in terms.synonyms(terms.stem("children"))
    assert "lift" in terms.synonyms("elevator") and "elevator" in terms.synonyms("lift")
    assert "어린" in terms.synonyms(terms.stem("애들"))  # "어린이" as the stem reads it
    assert terms.synonyms("parking") == frozenset() and terms.synonyms("projector") == frozenset()


def test_a_walk_in_is_coming_without_an_appointment_or_a_reservation() -> None:
    walk_in = terms.stem("walk-ins")
    for text in (
        "Patients without an appointment are seen only if a chair is free.",
        "Visits are by appointment only, so please arrange a time with us first.",
        "No reservation is needed at lunch.",
    ):
        assert terms.mentions(walk_in, {terms.stem(w) for w in terms.words(text)}, text.lower()), text
    # "a 7-minute walk" is a walk, not a walk-in; the walk-in freezer is asked about as a freezer
    text = "It is a 7-minute walk from Seongsu Station."
    assert not terms.mentions(walk_in, {terms.stem(w) for w in terms.words(text)}, text.lower())
    assert terms.thing_missing("Do you have a walk-in freezer?", "Walk-ins are welcome. No reservation needed.")


def test_a_time_of_day_asks_for_a_time_and_is_no_topic_of_its_own() -> None:
    # "Monday morning": the hours passage says "9:30 a.m.", never "morning"
    assert terms.key_terms("Are you guys open Monday morning?") == ["monday"]
    assert terms.key_terms("Can I come in on a Tuesday afternoon?") == ["tuesday"]
    for question in ("Can I come in on a Tuesday afternoon?", "Are you still serving tonight?", "Open evenings?"):
        assert "time" in terms.answer_types(question), question
    assert terms.key_terms("Can I get a night guard made?") == ["guard", "made"]  # what is asked about stays


def test_a_korean_day_with_two_particles_is_the_day_and_being_in_is_no_topic() -> None:
    # "월요일에도" is the "월요일" a passage writes; "계세요", "봐주시나요" ask whether, not about what
    assert terms.key_terms("박민수 원장님 월요일에도 진료 보세요?") == ["박민수", "원장", "월요일", "진료"]
    assert terms.key_terms("화요일엔 몇 시에 문 열어요?") == ["화요일"]
    assert terms.key_terms("최 원장님 수요일에 계세요?") == ["최", "원장", "수요일"]
    assert terms.key_terms("애들도 봐주시나요?") == ["애들"]


def test_a_question_for_a_time_of_the_clock_is_not_answered_by_days_alone() -> None:
    days = "최하나 원장은 월요일, 화요일, 목요일, 금요일에 진료합니다."
    assert terms.clock_missing("목요일에는 몇 시까지 진료해요?", days)
    assert not terms.clock_missing("목요일에는 몇 시까지 진료해요?", "목요일은 오후 9시까지 진료합니다.")
    assert terms.clock_missing("What time does Dr. Choi start?", "Dr. Choi works Mondays and Fridays.")
    assert not terms.clock_missing("What time do you close?", "We close at 6:30 p.m.")
    # "how early" may ask how far ahead, which a passage says in minutes
    assert not terms.clock_missing("How early should I call?", "Call at least 30 minutes ahead.")
    assert not terms.clock_missing("Which days does she work?", "Mondays and Fridays.")


def test_the_thing_a_do_you_have_question_asks_about() -> None:
    assert terms.thing_asked("Does your meeting room have a whiteboard?") == "whiteboard"
    assert terms.thing_asked("Is there a screen in the meeting room I can plug my laptop into?") == "screen"
    assert terms.thing_asked("Do you have a parking space for visitors?") == "park"  # the space is the parking's
    assert terms.thing_asked("회의실에 프로젝터 있어요?") == "프로젝터"  # not the room it is in
    assert terms.thing_asked("아이들 놀이방 있어요?") == "놀이방"  # the playroom, not the children
    assert terms.thing_asked("주차 공간 있어요?") == "주차"
    # no thing: what may be done, where to do something, or nothing named
    assert terms.thing_asked("거기 회의실 빌릴 수 있어요?") is None
    assert terms.thing_asked("밤에 갑자기 이가 아픈데 연락할 데 있어요?") is None
    assert terms.thing_asked("Is there anything I should bring?") is None
    assert terms.thing_asked("Is there a charge for parking?") is None
    assert terms.thing_asked("What time do you close?") is None


def test_a_thing_asked_about_is_missing_from_a_passage_that_names_neither_it_nor_a_synonym() -> None:
    room = "Our meeting room has a TV screen and an HDMI cable."
    assert terms.thing_missing("Does the meeting room have a whiteboard?", room)
    assert not terms.thing_missing("Is there a TV in the meeting room?", room)
    assert not terms.thing_missing("Is there a monitor in the meeting room?", room)  # an everyday synonym
    assert not terms.thing_missing("Is there an elevator?", "A lift goes to the 3rd floor.")
    assert not terms.thing_missing("Do you have naengmyeon?", "Cold noodles: mul-naengmyeon, 11,000 won.")
    assert terms.thing_missing("회의실에 화이트보드 있나요?", "회의실에는 TV 모니터와 HDMI 케이블이 있습니다.")
    assert not terms.thing_missing("아기 의자 있나요?", "아기 의자도 있으니 말씀해 주세요.")
    assert not terms.thing_missing("When do you open?", "We open at 9.")  # not that kind of question


def test_a_question_about_today_is_not_answered_by_a_passage_that_names_no_day() -> None:
    parking = "Patients park free for up to 2 hours in the basement car park."
    assert terms.today_missing("Is the car park full right now?", parking)
    assert terms.today_missing("오민지 매니저님 지금 통화 가능하세요?", "오민지 매니저는 계약과 일정을 담당합니다.")
    # a passage's days answer for today: the caller hears which days
    assert not terms.today_missing("Is Dr. Park in today?", "Dr. Park works on Tuesdays and Thursdays.")
    assert not terms.today_missing("오늘 영업하세요?", "매주 월요일은 쉽니다.")
    assert not terms.today_missing("Are you open today?", "We are closed on all public holidays.")
    assert not terms.today_missing("Is there parking?", parking)  # not a question about today


@pytest.mark.parametrize(
    "question, said",
    [
        ("Can I move my appointment to another day?", "Can I reschedule my appointment to another day?"),
        ("Could I push my cleaning back to next week?", "Could I reschedule my cleaning back to next week?"),
        ("Is it possible to postpone my appointment?", "Is it possible to reschedule my appointment?"),
        ("Can I change the time of my booking?", "Can I reschedule the time of my booking?"),
        ("다음 주로 예약 미룰 수 있나요?", "다음 주로 예약 변경 수 있나요?"),
        # a general verb with no booking for its object moves nothing
        ("Can I move my car if the parking lot is full?", "Can I move my car if the parking lot is full?"),
        ("Can I change my order?", "Can I change my order?"),
        ("자리 좀 옮겨도 돼요?", "자리 좀 옮겨도 돼요?"),
    ],
)
def test_moving_a_booking_is_asked_in_the_owners_word_reschedule(question, said) -> None:
    # "Can I move my appointment …?" is the cancellation rule's "cancel or reschedule", not the late
    # rule's "we may have to move you to the next free slot"
    assert terms.restated(question) == said
    late = "If you arrive more than 15 minutes late, we may have to move you to the next free slot."
    if said != question and "reschedule" in said:
        assert "move" not in terms.key_terms(question) and "reschedule" in terms.key_terms(question)
        stems = {terms.stem(w) for w in terms.words(late)}
        assert not terms.mentions("reschedule", stems, late.lower())


@pytest.mark.parametrize(
    "question, said",
    [
        # having a booking another day is moving it; making or getting one another day is booking one
        ("Can I have my appointment at another time?", "Can I reschedule my appointment at another time?"),
        ("Could we do my son's checkup a different day?", "Could we reschedule my son's checkup a different day?"),
        ("Can I get an appointment another day?", "Can I get an appointment another day?"),
        # what something will "run me" is its cost; being run through something is not
        ("What's whitening gonna run me?", "What's whitening gonna cost?"),
        ("What would a crown set us back?", "What would a crown cost?"),
        ("Would you run me through the prices?", "Would you run me through the prices?"),
        ("Can the nurse run me to the station?", "Can the nurse run me to the station?"),
        # a time said in words is written as the knowledge writes times
        ("Can I come at quarter to six?", "Can I come at 5:45?"),
        ("Are you there at half past one?", "Are you there at 1:30?"),
        ("Could I come by around the quarter pass one?", "Could I come by around the 1:15?"),  # as heard in a call
        ("Is someone in at quarter to one?", "Is someone in at 12:45?"),
        ("Open at quarter past 8 on Friday?", "Open at 8:15 on Friday?"),
        ("Is half the team in?", "Is half the team in?"),
    ],
)
def test_everyday_phrasings_are_read_in_the_owners_words(question, said) -> None:
    assert terms.restated(question) == said


def test_a_walk_in_is_spelt_out_for_the_models_and_matched_by_its_phrase_in_the_key_words() -> None:
    assert terms.for_models("Do you take walk-ins?") == "Do you take walk-ins (without an appointment or reservation)?"
    assert terms.for_models("Can I just walk in?") == "Can I just walk in (without an appointment or reservation)?"
    # the key words stay the caller's: the phrase counts as covering them (terms.mentions)
    assert terms.key_terms("Do you take walk-ins?") == ["take", "walk-in"]
    assert terms.for_models("How much is a crown?") == "How much is a crown?"


@pytest.mark.parametrize(
    "question, asks_time",
    [
        ("Would it be okay to bump my cleaning to next Tuesday?", False),  # the day is where it goes
        ("My kid is sick, can we do his appointment another day?", False),
        ("목요일 예약을 다음 주 화요일로 옮길 수 있을까요?", False),
        ("Until when can I reschedule without paying the fee?", True),  # asked: when
        ("What time can I move my appointment to?", True),
        ("예약 변경은 언제까지 해야 하나요?", True),
        ("Are you open next Tuesday?", True),  # no booking moved: the day is what is asked
        # a day or a part of one that only says when the thing asked about happens asks for no time
        ("Do you have a kids' menu on weekends?", False),
        ("Are walk-ins okay on a weekday morning?", False),
        ("Which days is Dr. Park in?", True),
        ("Saturday hours?", True),
        ("토요일에도 진료하세요?", True),  # Korean: only a booking moved asks for none
    ],
)
def test_a_named_day_asks_for_a_time_only_when_the_question_asks_when(question, asks_time) -> None:
    assert ("time" in terms.answer_types(question)) is asks_time


@pytest.mark.parametrize(
    ("question", "moves"),
    [
        ("Can I move my Thursday filling to next Monday?", True),
        ("Could I bump my cleaning to the afternoon?", True),
        ("I can't come tomorrow, how do I reschedule?", True),
        ("Can I push my appointment back a week?", True),
        ("목요일 진료 예약을 다음 주로 옮겨도 되나요?", True),
        ("Can I change the phone number on my appointment?", False),  # a detail of it, not its time
        ("Can I postpone paying until my insurance comes through?", False),  # not a booking
        ("Can I move my car to the other lot at 5?", False),
        ("Can I book an appointment for next Monday?", False),  # a new one
        ("예약자 전화번호를 바꿀 수 있어요?", False),
        ("치료비 내는 날짜를 미룰 수 있어요?", False),
    ],
)
def test_a_booking_moved_to_another_time(question: str, moves: bool) -> None:
    assert terms.moves_booking(question) is moves


def test_a_passage_that_tells_how_bookings_are_moved() -> None:
    assert terms.tells_rescheduling("Please call us at least 24 hours ahead to cancel or reschedule.")
    assert terms.tells_rescheduling("How do I cancel or change an appointment? Call us.")
    assert terms.tells_rescheduling("예약 취소나 변경은 하루 전까지 전화로 해 주세요.")
    # moving a late patient to the next slot is not how a caller moves a booking
    assert not terms.tells_rescheduling("If you are late, we may have to move you to the next free slot.")
    assert not terms.tells_rescheduling("Call reception to make an appointment.")


def test_a_detail_of_a_booking_changed_is_missing_from_a_passage_that_does_not_name_it() -> None:
    moving = "Please call us at least 24 hours ahead to cancel or change an appointment."
    assert terms.detail_missing("Can I update the phone number on my appointment?", moving)
    assert terms.detail_missing("Could I change the email on my reservation?", moving)
    assert terms.detail_missing("예약자 연락처를 수정할 수 있나요?", "예약 취소나 변경은 하루 전까지 전화로 해 주세요.")
    # its day or time is moving it, and a passage that names the detail may answer
    assert not terms.detail_missing("Can I change the time of my appointment?", moving)
    assert not terms.detail_missing("예약 날짜를 바꿀 수 있나요?", "예약 취소나 변경은 하루 전까지 전화로 해 주세요.")
    assert not terms.detail_missing(
        "Can I change the name on my booking?", "To change the name on a booking, e-mail us the new name."
    )
