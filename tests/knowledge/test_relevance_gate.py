"""The honesty gate: which passage answers a caller's question, or that none does.

Measured on the held-out questions of ``knowledge/retrieval/eval`` (never used to fit the gate), with
the real models (USE for search, multilingual-e5 for the second opinion). The models are
deterministic, so the floors below hold on any machine; they sit a few points under what was
measured (answered 54 %, wrong 1.4 %, honest on unknowns 95 %) so that a regression shows, and far
above the old cosine threshold's 15 % wrong answers and 65 % honesty.
"""

from __future__ import annotations

import pytest

from knowledge.retrieval import MemoryStore, Retriever, UsemEmbedder
from knowledge.retrieval.evaluate import evaluate, index_items, load_sets
from knowledge.retrieval.relevance import RelevanceGate, unknown_names
from knowledge.retrieval.retriever import Passage


@pytest.fixture(scope="module")
def embedder():
    return UsemEmbedder()


@pytest.fixture(scope="module")
def clinic(embedder):
    """A clinic's knowledge: crowns and braces priced, no Invisalign, no veneers."""
    items = [
        {"id": "crown", "text": "A zirconia crown costs 450,000 won including the fitting.", "heading": "Prices"},
        {
            "id": "braces",
            "text": "Metal braces cost 3.5 million won; ceramic braces 4.5 million won.",
            "heading": "Orthodontics",
        },
        {"id": "hours", "text": "We are open Monday to Friday from 9:30 a.m. to 6:30 p.m.", "heading": "Hours"},
        {"id": "parking", "text": "Free parking for two hours in the basement of the building.", "heading": "Parking"},
    ]
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, "clinic", items)
    return retriever


async def ask(retriever: Retriever, question: str, owner: str = "clinic", business: str = ""):
    result = await retriever.search(owner, question)
    return await retriever.judge(question, result.passages, owner if owner != "clinic" else None, business=business)


async def test_a_paraphrase_is_answered_with_the_passage_that_answers_it(clinic) -> None:
    judgement = await ask(clinic, "What does a crown cost?")
    assert judgement.answerable and judgement.passage.id == "crown", judgement
    assert judgement.answering[0].id == "crown" and judgement.probability >= judgement.answer_at


async def test_a_near_miss_is_not_answered_with_its_neighbour(clinic) -> None:
    # the knowledge prices crowns and braces; a caller asking about veneers must not hear a crown's price
    judgement = await ask(clinic, "What's the price for veneers?")
    assert not judgement.answerable and judgement.answering == [], judgement
    assert judgement.candidates  # there were passages to weigh; none answered


async def test_a_question_about_what_comes_after_a_passages_limit_is_not_answered_with_the_limit(clinic) -> None:
    # "free for two hours" says nothing of the third hour: reading it out would sound like an answer
    assert (await ask(clinic, "Is there free parking?")).passage.id == "parking"
    judgement = await ask(clinic, "How much is parking after the first two hours?")
    assert not judgement.answerable and judgement.answering == [], judgement
    assert all(p.id != "parking" or probability == 0.0 for p, probability, _ in judgement.candidates)


async def test_a_caller_who_introduces_themselves_is_answered_as_if_they_had_not(embedder) -> None:
    # "Hi, this is Alex from Acme." names nothing the knowledge covers: it halved the gate's coverage
    # (0.72 against 0.93 for the bare question) and the demo's caller heard "not sure"
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(
        retriever,
        "owner",
        [
            {"id": "meeting", "text": "Next Monday's team meeting is at 10 a.m. in room 3."},
            {"id": "saturdays", "text": "From next week we open on Saturdays from 10 to 2."},
            {"id": "deliveries", "text": "Deliveries go to the reception on the ground floor."},
        ],
    )
    for question in (
        "When is the team meeting next week?",
        "Hi, this is Alex from Acme. When is the team meeting next week?",
        "Hello Jiyoung, it's Alex again. When is the team meeting next week?",
    ):
        result = await retriever.search("owner", question)
        judgement = await retriever.judge(question, result.passages)
        assert judgement.answerable and judgement.passage.id == "meeting", (question, judgement.probability)
    # and an introduction does not make an unknown answerable
    question = "Hi, this is Alex from Acme. Is the parking free?"
    result = await retriever.search("owner", question)
    assert not (await retriever.judge(question, result.passages)).answerable


async def test_a_knowledge_base_of_one_item_answers_its_question_and_only_that(embedder) -> None:
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, "one", [{"id": "parking", "text": "Visitors park in the basement; two hours are free."}])
    for question, answered in (("Where can visitors park their car?", True), ("How much is a crown?", False)):
        result = await retriever.search("one", question)
        assert (await retriever.judge(question, result.passages)).answerable is answered, question


async def test_without_a_gate_the_retriever_keeps_its_cosine_threshold(embedder) -> None:
    retriever = Retriever(embedder, MemoryStore(), top_k=5)
    index_items(retriever, "clinic", [{"id": "hours", "text": "We are open Monday to Friday from 9:30 to 6:30."}])
    result = await retriever.search("clinic", "When are you open?")
    judgement = await retriever.judge("When are you open?", result.passages)
    assert judgement.answer_at == retriever.threshold
    assert judgement.answerable == (result.passages[0].score >= retriever.threshold)


async def test_a_name_the_knowledge_never_mentions_is_not_answered_nor_offered(embedder) -> None:
    # Dr. Lee's passage sounds like the answer to any question about Dr. Lee; it says nothing of languages
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(
        retriever,
        "clinic",
        [
            {
                "id": "lee",
                "text": "Dr. Jiyoung Lee does crowns and implants. She sees patients on Mondays and Fridays.",
            },
            {"id": "braces", "text": "Dr. Minsu Park does all braces treatment, metal or ceramic."},
            {"id": "booking", "text": "Book online through Naver Booking: search for Smile Tree Dental."},
            {"id": "hours", "text": "We are open Monday to Friday from 9:30 a.m. to 6:30 p.m.", "heading": "Hours"},
        ],
    )
    for question, unknown in (
        ("Does Dr. Lee speak English?", ("english",)),
        ("Do you do Invisalign?", ("invisalign",)),
        ("Is Dr. Yoon in on Monday?", ("yoon",)),
    ):
        result = await retriever.search("clinic", question)
        judgement = await retriever.judge(question, result.passages, "clinic")
        assert not judgement.answerable and judgement.unknown_names == unknown, (question, judgement)
        assert judgement.likeliest is None or judgement.likeliest[1] == 0.0  # no "did you mean …?" either
    # a name the knowledge does mention is no reason to refuse
    result = await retriever.search("clinic", "Which days does Dr. Lee see patients?")
    judgement = await retriever.judge("Which days does Dr. Lee see patients?", result.passages, "clinic")
    assert judgement.answerable and judgement.passage.id == "lee", judgement.probability


async def test_a_name_the_best_passages_leave_out_is_looked_up_in_the_whole_knowledge(embedder) -> None:
    # the business's name is in one passage only; a question naming it finds the hours passage alone
    retriever = Retriever(embedder, MemoryStore(), top_k=1, gate=RelevanceGate(embedder))
    index_items(
        retriever,
        "clinic",
        [
            {"id": "hours", "text": "We are open Monday to Friday from 9:30 a.m. to 6:30 p.m.", "heading": "Hours"},
            {"id": "about", "text": "Smile Tree Dental Clinic was founded in 2009 by Dr. Jiyoung Lee."},
        ],
    )
    question = "What time does Smile Tree open?"
    result = await retriever.search("clinic", question)
    assert [p.id for p in result.passages] == ["hours"]
    assert (await retriever.judge(question, result.passages)).unknown_names == ("smile", "tree")
    assert (await retriever.judge(question, result.passages, "clinic")).unknown_names == ()


def test_a_name_as_the_recogniser_misspells_it_is_still_a_name_the_knowledge_has() -> None:
    passages = [
        Passage("pay", "We accept cash, Samsung Pay, Kakao Pay and bank transfer.", 0.5, {}),
        Passage("holidays", "Over Seollal and Chuseok we close for three days.", 0.4, {}),
        Passage("lee", "Dr. Jiyoung Lee sees patients on Mondays.", 0.3, {}),
    ]
    assert unknown_names("Do you take Kakapay?", passages) == ()  # heard so in a call, hints and all
    assert unknown_names("Are you closed for Chusok?", passages) == ()
    # but a name that only looks a little like one is another name, and a short one must match exactly
    assert unknown_names("Can I pay with PayPal?", passages) == ("paypal",)
    assert unknown_names("Is Dr. Leo in on Monday?", passages) == ("leo",)


def test_a_name_that_starts_with_a_word_of_the_knowledge_is_still_unknown() -> None:
    # "OpenTable" is not covered by "open": a word and then another word is another name
    passages = [
        Passage("hours", "We are open from 11:30 to 22:00.", 0.5, {}),
        Passage("booking", "Book in the Catchtable app, up to 30 days ahead; reserved tables are held.", 0.4, {}),
    ]
    assert unknown_names("Can I book through OpenTable?", passages) == ("opentable",)
    # an ending is not another word: "Catchtables" is Catchtable
    assert unknown_names("Are Catchtables reservations kept?", passages) == ()


async def test_a_caller_asking_for_the_address_hears_the_address_and_not_a_branch_it_does_not_have(embedder) -> None:
    # given a shop whose address passage shares no word with "address" and many passages that do not
    # state one (the embeddings put a street address far down: 8th of 27 for the evaluation clinic)
    items = [
        {
            "id": "address",
            "text": "Blue Door Bakery, 2nd floor, 17 Yeonhui-ro 11-gil, Seodaemun-gu, Seoul.",
            "heading": "Location",
        },
        {"id": "hours", "text": "We are open Tuesday to Sunday from 8 a.m. to 7 p.m.; closed on Mondays."},
        {"id": "cakes", "text": "Whole cakes need to be ordered two days ahead; a 15 cm cake costs 38,000 won."},
        {"id": "parking", "text": "There is no parking at the bakery; the public car park is a 3-minute walk."},
        {"id": "delivery", "text": "We deliver within 3 km for orders over 30,000 won; the fee is 3,000 won."},
        {"id": "allergies", "text": "Ask our staff about allergens: some breads contain nuts and all contain wheat."},
        {"id": "wifi", "text": "Free Wi-Fi for customers; the password is on your receipt."},
        {"id": "cards", "text": "We take cards, Kakao Pay and cash."},
        {
            "id": "주소",
            "text": "블루도어 베이커리는 서울 서대문구 연희로11길 17, 2층에 있습니다.",
            "heading": "오시는 길",
        },
    ]
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, "bakery", items)

    async def answer(question: str):
        result = await retriever.search("bakery", question)
        return await retriever.judge(question, result.passages, "bakery")

    # when callers ask for the address, in English or Korean, as they would say it
    for question in ("What's your address?", "Could you give me the bakery's address, please?"):
        judgement = await answer(question)
        # then the passage that states it answers
        assert judgement.passage is not None and judgement.passage.id == "address", (question, judgement)
    judgement = await answer("주소 좀 알려 주세요.")
    assert judgement.passage is not None and judgement.passage.id == "주소", judgement  # its own language's
    # and an address the knowledge does not have (another branch, an e-mail) is not answered with it
    for question in ("What's the address of your Busan branch?", "What's your email address?", "부산 지점 주소요."):
        judgement = await answer(question)
        assert judgement.passage is None, (question, judgement)
    # nor is another place's address, filed under another topic or learned with no heading at all
    hours = {"id": "hours", "text": "We are open every day from 9 a.m. to 9 p.m."}
    for owner, other in (
        (
            "cafe",
            {"id": "parking", "text": "The public car park is at 20 Yeonhui-ro, Seodaemun-gu.", "heading": "Parking"},
        ),
        ("deli", {"id": "beans", "text": "Our beans come from a roaster at 5 Dongmak-ro, Mapo-gu."}),
    ):
        index_items(retriever, owner, [other, hours])
        result = await retriever.search(owner, "What's your address?")
        judgement = await retriever.judge("What's your address?", result.passages, owner)
        assert judgement.passage is None, (owner, judgement)


async def test_the_business_name_in_a_question_is_who_was_called_not_what_is_asked(embedder) -> None:
    # given the bakery's knowledge, whose passages (but the address) never say its name
    items = [
        {"id": "address", "text": "Blue Door Bakery, 17 Yeonhui-ro 11-gil, Seodaemun-gu.", "heading": "Location"},
        {"id": "hours", "text": "We are open Tuesday to Sunday from 8 a.m. to 7 p.m.; closed on Mondays."},
        {"id": "cakes", "text": "Whole cakes need to be ordered two days ahead; a 15 cm cake costs 38,000 won."},
        {"id": "parking", "text": "There is no parking at the bakery; the public car park is a 3-minute walk."},
        {"id": "영업", "text": "화요일부터 일요일까지 오전 8시부터 오후 7시까지 영업하고, 월요일은 쉽니다."},
    ]
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, "bakery", items)

    def answer(question: str, business: str):
        return ask(retriever, question, "bakery", business)

    # when a caller names the business they called
    for question, business, expected in (
        ("Is Blue Door open on Sundays?", "Blue Door Bakery", "hours"),
        ("How far ahead do I order a cake from Blue Door Bakery?", "Blue Door Bakery", "cakes"),
        ("블루도어베이커리 일요일에도 영업해요?", "블루도어베이커리", "영업"),
    ):
        # then it is answered as if they had not (without the setting the name is a topic no passage has)
        judgement = await answer(question, business)
        assert judgement.passage is not None and judgement.passage.id == expected, (question, judgement)
        assert (await answer(question, "")).passage is None, question
    # and what the knowledge does not have stays unanswered, the name said or not
    for question in ("Does Blue Door sell gluten-free bread?", "Does Blue Door Bakery deliver to Incheon?"):
        assert (await answer(question, "Blue Door Bakery")).passage is None, question


async def test_a_caller_may_say_kids_where_the_owner_wrote_children(embedder) -> None:
    # given a clinic that wrote "children" and "lift"
    items = [
        {"id": "kids", "text": "Dr. Choi sees children from age 3; sealants are covered up to age 18."},
        {"id": "access", "text": "The building has a step-free entrance and a lift to the 3rd floor."},
        {"id": "hours", "text": "We are open Monday to Friday from 9:30 a.m. to 6:30 p.m."},
        {"id": "parking", "text": "Patients park free for two hours in the basement car park."},
        {"id": "prices", "text": "Scaling costs 15,000 won with national health insurance."},
    ]
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, "clinic2", items)

    def answer(question: str):
        return ask(retriever, question, "clinic2")

    # when callers use the everyday word for the same thing, then the passage answers
    for question, expected in (("Do you see kids?", "kids"), ("Is there an elevator?", "access")):
        judgement = await answer(question)
        assert judgement.passage is not None and judgement.passage.id == expected, (question, judgement)
    # and what it does not say stays unanswered
    for question in ("Do you have a play area for kids?", "Does the elevator go down to the car park?"):
        assert (await answer(question)).passage is None, question


async def test_a_thing_the_passage_does_not_name_is_not_answered_with_the_room_it_would_be_in(embedder) -> None:
    # given a design studio's knowledge (the evaluation set's, 22 items in each language), whose
    # meeting room has "a TV screen and an HDMI cable" and no projector
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    for eval_set in load_sets():
        if eval_set.domain == "office":
            index_items(retriever, f"studio_{eval_set.language}", eval_set.items)
    # when a caller asks for what the room has, then its passage answers (in either language)
    for question, language in (("Is there a TV in the meeting room?", "en"), ("회의실에 TV 있어요?", "ko")):
        judgement = await ask(retriever, question, f"studio_{language}")
        assert judgement.passage is not None and judgement.passage.id == "meeting_room", (question, judgement)
    # and asked for a thing it does not name, the caller is not read the room's passage as if it answered
    for question, language in (
        ("Does your meeting room have a whiteboard?", "en"),
        ("회의실에 프로젝터 있어요?", "ko"),
        ("회의실에 화이트보드 있나요?", "ko"),
    ):
        assert (await ask(retriever, question, f"studio_{language}")).passage is None, question


async def test_what_is_so_right_now_is_not_answered_with_what_is_so_in_general(embedder) -> None:
    # given the clinic's knowledge (the evaluation set's): free parking for two hours, no word of how full
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    for eval_set in load_sets():
        if eval_set.domain == "clinic":
            index_items(retriever, f"clinic_{eval_set.language}", eval_set.items)
    # when a caller asks about parking, then the parking passage answers
    assert (await ask(retriever, "Is there parking?", "clinic_en")).passage.id == "parking"
    # and asked whether the car park is full right now, the caller is not read it as if it said
    for question, language in (("Is the car park full right now?", "en"), ("지금 주차장에 자리 있어요?", "ko")):
        assert (await ask(retriever, question, f"clinic_{language}")).passage is None, question


def test_on_held_out_questions_the_gate_is_honest_and_rarely_wrong() -> None:
    gate = evaluate("relevance", "heldout")["all"]
    threshold = evaluate("threshold", "heldout")["all"]
    assert gate["honest"] >= 90.0 and gate["wrong"] <= 3.0 and gate["answered"] >= 50.0, gate
    assert gate["honest"] > threshold["honest"] + 20 and gate["wrong"] < threshold["wrong"] / 5, (gate, threshold)


async def test_prepared_knowledge_answers_a_first_question_without_new_model_work(embedder) -> None:
    # given: a call's start prepared the owner's knowledge (what its greeting's seconds are for)
    gate = RelevanceGate(embedder)
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=gate)
    index_items(
        retriever,
        "shop",
        [
            {"id": "hours", "text": "We open at ten and close at seven, every day but Monday.", "heading": "Hours"},
            {
                "id": "repair",
                "text": "A watch battery is replaced while you wait, for 15,000 won.",
                "heading": "Repairs",
            },
        ],
    )
    assert len(await retriever.prepare("shop")) == 2
    assert await retriever.prepare("nobody") == []  # an empty knowledge base: nothing to get ready
    model = gate.scorer._model
    embedded: list[str] = []

    class Spy:  # the gate's second model, counting the passages it is asked to embed
        query = staticmethod(model.query)

        @staticmethod
        def passage(texts):
            embedded.extend(texts)
            return model.passage(texts)

    gate.scorer._model = Spy()

    # when: the first question
    judgement = await ask_owner(retriever, "shop", "How much is a new battery for my watch?")

    # then: answered, and no passage had to be embedded while the caller waited
    assert judgement.answerable and judgement.passage.id == "repair", judgement
    assert embedded == []


async def ask_owner(retriever: Retriever, owner: str, question: str):
    result = await retriever.search(owner, question)
    return await retriever.judge(question, result.passages)


async def test_moving_an_appointment_is_judged_in_the_owners_word_not_by_a_neighbour_that_says_move(embedder) -> None:
    # the late-arrival rule "may move you … to another day"; the cancellation rule says "reschedule":
    # both models put "move my appointment to another day" next to the first until they read it as the
    # owners write it (terms.restated), and the gate then answered or offered the late-arrival rule
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    sets = {s.owner: s for s in load_sets(("en",))}
    index_items(retriever, "clinic-en", sets["clinic-en"].items)
    for question in ("Can I move my appointment to another day?", "Could I push my cleaning back to next week?"):
        result = await retriever.search("clinic-en", question)
        judgement = await retriever.judge(question, result.passages)
        likeliest, _ = judgement.likeliest
        assert likeliest.id == "cancel_policy", (question, judgement)
        assert judgement.passage is None or judgement.passage.id == "cancel_policy"


async def test_everyday_phrasings_find_the_owners_item(embedder) -> None:
    # "run me" asks a price, a booking had "another day" is moved, and a "walk-in" is what the studio's
    # rule calls a visit without an appointment: before the models read these in the owners' words, the
    # first was unsure, the second answered with the late-arrival rule, the third offered nothing
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    sets = {s.owner: s for s in load_sets(("en",))}
    index_items(retriever, "clinic-en", sets["clinic-en"].items)
    for question, item in (
        ("What's whitening gonna run me?", "price_whitening"),
        ("Can I have my appointment at another time?", "cancel_policy"),
    ):
        judgement = await ask_owner(retriever, "clinic-en", question)
        assert judgement.passage is not None and judgement.passage.id == item, (question, judgement)
    index_items(retriever, "office-en", sets["office-en"].items)
    walk_in = await ask_owner(retriever, "office-en", "Can I just walk in to the studio to talk about a logo?")
    assert walk_in.likeliest[0].id == "visits", walk_in
    assert walk_in.passage is not None or [p.id for p, _ in walk_in.to_check(0.2)] == ["visits"]


def test_the_evaluation_scores_the_checks_calls_make_the_likeliest_then_the_runner_up() -> None:
    from knowledge.retrieval.evaluate import Score
    from knowledge.retrieval.relevance import Judgement

    def checks(judgement: Judgement, level: float) -> list:
        return [passage for passage, _ in judgement.to_check(level)]

    late = Passage("late_arrival", "We may move you to the next free slot.", 0.5, {"question": "What if I'm late?"})
    cancel = Passage("cancel_policy", "Call 24 hours ahead to reschedule.", 0.4, {"question": "How do I cancel?"})
    learned = Passage("learned", "The lift is being repaired.", 0.4, {})
    verdict = Judgement(None, 0.5, [(late, 0.5, {}), (cancel, 0.3, {}), (learned, 0.25, {})])
    assert checks(verdict, 0.2) == [late, cancel]
    assert checks(verdict, 0.35) == [late]  # the runner-up below the level is not offered
    assert checks(Judgement(None, 0.5, [(learned, 0.5, {}), (late, 0.4, {})]), 0.2) == []  # nothing to name first
    score = Score()
    move = {"q": "Can I move my appointment to another day?", "expect": "cancel_policy"}
    score.add(move, None, offers=checks(verdict, 0.2))
    score.add({"q": "Can I pay later?", "expect": None}, None, offers=checks(verdict, 0.2))
    report = score.report()
    assert report["unsure"] == 100.0 and report["honest"] == 100.0
    assert report["checked"] == {"offered": 4, "answered_after_check": 100.0, "declined": 3}


async def test_a_time_of_the_day_is_answered_by_the_hours_whose_span_holds_it(embedder) -> None:
    # the models put the opening hours first for a time inside the lunch break, and rank the weekday
    # hours below the Thursday evening clinic (whose "평일" covers Tuesday); the spans decide
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    sets = {s.owner: s for s in load_sets()}
    for owner in ("clinic-en", "clinic-ko", "office-en"):
        index_items(retriever, owner, sets[owner].items)
    for owner, question, item in (
        ("clinic-en", "Will somebody be there at half past one on a Tuesday?", "lunch_break"),
        ("clinic-en", "Can I still come in at 7:45 on a Thursday?", "hours_thursday"),
        ("clinic-ko", "화요일 저녁 6시쯤 가도 진료 받을 수 있어요?", "hours_weekday"),
    ):
        judgement = await ask_owner(retriever, owner, question)
        assert judgement.passage is not None and judgement.passage.id == item, (question, judgement)
    # a thing of its own, or another rule's hours, is not answered with the opening hours
    for owner, question, not_item in (
        ("clinic-en", "Is the bank downstairs open at 5 on Friday?", "hours_weekday"),
        ("clinic-en", "Can I see Dr. Choi at 7 on Thursday evening?", "hours_thursday"),
        ("office-en", "Can a courier bring a parcel at 6:30 on Tuesday?", "office_hours"),
    ):
        judgement = await ask_owner(retriever, owner, question)
        assert judgement.passage is None or judgement.passage.id != not_item, (question, judgement)


async def test_moving_a_booking_to_another_time_is_answered_by_the_rule_for_moving_bookings(embedder) -> None:
    # the models put the hours of the days named ("to Monday morning") or the late-arrival rule first
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    sets = {s.owner: s for s in load_sets()}
    for owner in ("clinic-en", "clinic-ko", "restaurant-en"):
        index_items(retriever, owner, sets[owner].items)
    for owner, question in (
        ("clinic-en", "Can I move my Thursday filling to next Monday morning?"),
        ("clinic-en", "Could I bump my cleaning to a later date?"),
        ("clinic-en", "Can I move my Thursday appointment to 3 p.m. on Friday?"),  # a move, not the hours at 3
        ("clinic-ko", "목요일 진료 예약을 다음 주 월요일로 옮겨도 되나요?"),
    ):
        judgement = await ask_owner(retriever, owner, question)
        assert judgement.passage is not None and judgement.passage.id == "cancel_policy", (question, judgement)
    # a restaurant whose knowledge says nothing of moving a reservation answers nothing
    judgement = await ask_owner(retriever, "restaurant-en", "Can I push our reservation to 9 pm on Saturday?")
    assert judgement.passage is None, judgement


async def test_changing_a_detail_of_a_booking_is_not_answered_by_the_rule_for_moving_bookings(embedder) -> None:
    # "call us to cancel or change an appointment" sounds like an answer and says nothing of the detail
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    sets = {s.owner: s for s in load_sets()}
    for owner in ("clinic-en", "clinic-ko"):
        index_items(retriever, owner, sets[owner].items)
    for owner, question in (
        ("clinic-ko", "예약자 연락처를 수정할 수 있나요?"),
        ("clinic-ko", "예약자 이름을 바꿀 수 있나요?"),
        ("clinic-en", "Can I correct the name on my appointment?"),
    ):
        judgement = await ask_owner(retriever, owner, question)
        offered = [passage.id for passage, _ in judgement.to_check(0.2)]
        assert judgement.passage is None and "cancel_policy" not in offered, (question, judgement)
    judgement = await ask_owner(retriever, "clinic-ko", "예약 시간을 다른 날로 바꿀 수 있나요?")
    assert judgement.passage is not None and judgement.passage.id == "cancel_policy", judgement


async def test_of_the_passages_holding_a_time_a_closure_is_the_exception_and_other_hours_are_not_opening_hours(
    embedder,
) -> None:
    items = [
        {"id": "hours", "text": "We are open every day from 11:30 a.m. to 10 p.m.", "heading": "Opening hours"},
        {"id": "delivery", "text": "We deliver through the app from 11 a.m. to 9 p.m.", "heading": "Delivery hours"},
        {
            "id": "break",
            "text": "From 3 p.m. to 5 p.m. the kitchen closes and we don't seat guests.",
            "heading": "Break",
        },
        {"id": "menu", "text": "Our bibimbap costs 11,000 won.", "heading": "Menu"},
    ]
    retriever = Retriever(embedder, MemoryStore(), top_k=5, gate=RelevanceGate(embedder))
    index_items(retriever, "diner", items)
    for question, item in (("Is anyone there at 8 pm?", "hours"), ("Can we come in at 4 in the afternoon?", "break")):
        judgement = await ask(retriever, question, owner="diner")
        assert judgement.passage is not None and judgement.passage.id == item, (question, judgement)


def test_the_hours_do_not_answer_for_a_person_the_question_names() -> None:
    from knowledge.retrieval.relevance import judge

    thursday = Passage("hours_thursday", "On Thursdays we see patients until 9 p.m.; we open at 9:30 a.m.", 0.5, {})
    assert judge("Is anyone there at 7 on Thursday evening?", [thursday]).passage == thursday
    # Dr. Choi is known (her own days are elsewhere in the knowledge, not among the passages judged):
    # the clinic's hours say nothing of her
    assert judge("Can I see Dr. Choi at 7 on Thursday evening?", [thursday], known={"choi"}).passage is None
