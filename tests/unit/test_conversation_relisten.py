"""A question nothing answers is heard again expecting the words of the passages it came nearest.

Whole conversations with the fake providers of test_conversation_orchestrator: the fake recogniser
answers its calls in order, so its second result is what the second listen hears.
"""

from __future__ import annotations

from ariapp.conversation.answerer import UNSURE
from ariapp.conversation.deciding import expected_words
from knowledge.retrieval.relevance import Judgement
from tests.unit.test_conversation_confirm import PARKING, conversation
from tests.unit.test_conversation_orchestrator import OWNER, FakeRetriever, FakeSTT, Passage
from tests.virtual_time import event_loop_policy  # noqa: F401 - every test here runs on virtual time

FLOOR = Passage(
    "We are on the 3rd floor of the Hanbit Building; the elevator is next to the entrance.",
    0.2,
    {"item_id": 21, "heading": "Accessibility"},
)
NOT_SURE = UNSURE["en"].format(owner=OWNER)


class WordRetriever(FakeRetriever):
    """A gate that answers with the passage that has one of the question's words of four letters or
    more; otherwise its best passage is ``near`` (a gate probability below answering)."""

    def __init__(self, *passages: Passage, near: float = 0.3) -> None:
        super().__init__(*passages)
        self.near = near

    async def judge(
        self, question: str, passages: list[Passage], owner: str | None = None, *, business: str = ""
    ) -> Judgement:
        words = {w.strip("?.,").lower() for w in question.split() if len(w.strip("?.,")) >= 4}
        chosen = next((p for p in passages if words & set(p.text.lower().replace(";", "").split())), None)
        candidates = [(p, 0.9 if p is chosen else (self.near if i == 0 else 0.01), {}) for i, p in enumerate(passages)]
        return Judgement(chosen, 0.9 if chosen else self.near, candidates, answer_at=0.8)


async def test_a_misheard_question_is_heard_again_expecting_the_nearest_passages_words_and_answered() -> None:
    # given the recogniser hears "Which four are you on?", which no passage answers, and expecting
    # the words of the nearest passages ("floor", "elevator") hears the question right
    stt = FakeSTT("Which four are you on?", "Which floor are you on?")
    retriever = WordRetriever(FLOOR, PARKING)
    call = await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    # then the caller got the floor's answer
    assert call.ai_texts()[-1] == FLOOR.text
    # from the second listen, told the passages' words
    assert "floor" in stt.hints[1] and "elevator" in stt.hints[1] and "park" in stt.hints[1]
    assert [q for _, q in retriever.queries] == ["Which four are you on?", "Which floor are you on?"]
    # and the call's transcript (and the console's) says what was heard the second time
    caller = [t for t in call.orchestrator.turns if t.speaker == "caller"]
    assert [t.text for t in caller] == ["Which floor are you on?"]
    replaced = [e for e in call.published if getattr(e, "replaces", None) is not None]
    assert [(e.text, e.replaces) for e in replaced] == [("Which floor are you on?", caller[0].t)]


async def test_a_question_is_heard_again_by_the_second_listens_own_recogniser() -> None:
    # given a call whose unsure questions are heard again by another model (offline: whisper base)
    first, second = FakeSTT("Which four are you on?"), FakeSTT("Which floor are you on?")
    retriever = WordRetriever(FLOOR, PARKING)
    call = await conversation(first, retriever, turns=1, relisten=True, confirm_at=0, relisten_stt=second)
    # then the first recogniser heard the question once, the second heard it again expecting the words
    assert len(first.calls) == 1 and len(second.calls) == 1 and "floor" in second.hints[0]
    assert second.calls == first.calls  # the same audio
    assert call.ai_texts()[-1] == FLOOR.text


async def test_a_second_hearing_nothing_answers_either_leaves_the_question_as_first_heard() -> None:
    # given a near miss: heard twice, nothing in the knowledge answers it
    stt = FakeSTT("Do you do Botox?", "Do you do Botox here?")
    retriever = WordRetriever(FLOOR, PARKING)
    call = await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    # then the caller hears that the AI is not sure, and the transcript keeps the first hearing
    assert call.ai_texts()[-1] == NOT_SURE
    assert [t.text for t in call.orchestrator.turns if t.speaker == "caller"] == ["Do you do Botox?"]
    assert len(retriever.queries) == 2


async def test_a_question_no_passage_comes_near_is_not_heard_again() -> None:
    # given nothing in the knowledge is near what was heard (the gate's best is 0.05)
    stt = FakeSTT("Do you sell toothbrushes?", "Which floor are you on?")
    retriever = WordRetriever(FLOOR, PARKING, near=0.05)
    call = await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    # then the caller is told at once that the AI is not sure: no second recognition, no second search
    assert call.ai_texts()[-1] == NOT_SURE
    assert len(retriever.queries) == 1 and not any("floor" in hints for hints in stt.hints)


async def test_a_failed_second_listen_costs_the_caller_nothing() -> None:
    stt = FakeSTT("Which four are you on?", RuntimeError("the recogniser fell over"))
    call = await conversation(stt, WordRetriever(FLOOR, PARKING), turns=1, relisten=True, confirm_at=0)
    assert call.ai_texts()[-1] == NOT_SURE


async def test_a_caller_asking_for_a_person_is_not_heard_again() -> None:
    stt = FakeSTT("Can I talk to a person?", "Can I talk to a parking?")
    retriever = WordRetriever(FLOOR, PARKING)
    await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    assert len(stt.calls) == 1 and len(retriever.queries) == 1


async def test_a_question_answered_the_first_time_is_not_heard_again() -> None:
    stt = FakeSTT("Which floor are you on?", "Which four are you on?")
    retriever = WordRetriever(FLOOR, PARKING)
    call = await conversation(stt, retriever, turns=1, relisten=True)
    assert call.ai_texts()[-1] == FLOOR.text
    assert len(stt.calls) == 1 and len(retriever.queries) == 1


PAYMENT = Passage(
    "We take cards, cash, Kakao Pay, Naver Pay and Samsung Pay; no cheques.",
    0.2,
    {"item_id": 22, "heading": "Payment"},
)


class NameRetriever(WordRetriever):
    """:class:`WordRetriever`, with the gate's rule on names: a capitalised word no passage has makes
    nothing answer (probability 0 for every passage)."""

    async def judge(
        self, question: str, passages: list[Passage], owner: str | None = None, *, business: str = ""
    ) -> Judgement:
        text = " ".join(p.text.lower() for p in passages)
        unknown = tuple(
            w.strip("?.,").lower()
            for w in question.split()[1:]
            if w[0].isupper() and w.strip("?.,").lower() not in text
        )
        if not unknown:
            return await super().judge(question, passages, owner, business=business)
        candidates = [(p, 0.0, {}) for p in passages]
        return Judgement(None, 0.0, candidates, answer_at=0.8, unknown_names=unknown)


async def test_a_name_the_knowledge_does_not_have_is_heard_again_expecting_its_names_spelt_like_it() -> None:
    # given the recogniser hears "Sanson Pay", a name no passage has (so nothing near: probability 0),
    # and expecting the names spelt like it hears "Samsung Pay"
    stt = FakeSTT("Can I pay with Sanson Pay?", "Can I pay with Samsung Pay?")
    retriever = NameRetriever(PAYMENT, PARKING, near=0.0)
    call = await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    # then the caller is answered, and the second listen was told the knowledge's name most like it first
    assert call.ai_texts()[-1] == PAYMENT.text
    assert "Samsung Pay" in stt.hints[1]


def test_a_second_listen_for_a_name_the_knowledge_lacks_expects_its_names_spelt_most_like_it_first() -> None:
    told = expected_words([PAYMENT, PARKING], ("sanson",))
    assert told[0] == "Samsung Pay" and set(told[1:3]) == {"Kakao Pay", "Naver Pay"}, told
    assert expected_words([PAYMENT, PARKING])[:3] == ["payment", "take", "card"]  # no name unknown: key words


async def test_a_name_the_knowledge_does_not_have_heard_again_the_same_is_not_answered() -> None:
    # given a name the knowledge really does not have ("PayPal"), heard the same way twice
    stt = FakeSTT("Can I pay with PayPal?", "Can I pay with PayPal?")
    retriever = NameRetriever(PAYMENT, PARKING, near=0.0)
    call = await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    # then the AI says it is not sure (the second hearing was no different: not even searched again)
    assert call.ai_texts()[-1] == NOT_SURE
    assert len(stt.calls) == 2 and len(retriever.queries) == 1


async def test_a_second_hearing_that_only_changes_case_or_punctuation_is_not_judged_again() -> None:
    # given the second listen hears the same words, only lower-cased (the gate reads capitals as names)
    stt = FakeSTT("Do you do Botox?", "do you do botox")
    retriever = WordRetriever(FLOOR, PARKING)
    call = await conversation(stt, retriever, turns=1, relisten=True, confirm_at=0)
    # then the first hearing's verdict stands: one search, and the caller hears it
    assert call.ai_texts()[-1] == NOT_SURE
    assert len(stt.calls) == 2 and len(retriever.queries) == 1
