"""Calibrate the retrieval threshold of an embedding model on a small ko + en set.

Cosine scores mean different things for different models: USE multilingual
puts a caller's question and the fact that answers it at ~0.2-0.6 and an
off-topic question at ~0.0-0.25, while e5-style models squeeze everything into
0.8-0.9. So the threshold that decides "the knowledge base answers this" is
measured per model, on the set below, by :func:`calibrate`:

* ``FACTS``: a small business's knowledge base (16 facts, 10 Korean, 6 English),
  each with three questions a caller might ask, one of them in the other
  language (cross-lingual). Scored: question -> its own fact (``positives``).
* ``UNRELATED``: questions the knowledge base cannot answer, off-topic and
  in-domain (``unrelated``: each question's best score over all facts).
* ``PARAPHRASES``: statement pairs that say the same thing (the symmetric
  paraphrase distribution, for reference).

Rule: the threshold is the lowest score (rounded up to 0.01) that at most 5 %
of the unrelated questions reach, i.e. a false-accept rate of <= 5 % on this
set; the report gives the share of answerable questions that pass it.
A wrongly accepted passage is worse on the phone than a hand-over to a human,
hence a false-accept target rather than the best overall accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from knowledge.retrieval.embeddings import Embedder

__all__ = ["FACTS", "PARAPHRASES", "UNRELATED", "CalibrationReport", "calibrate"]

FACTS: Final[tuple[tuple[str, tuple[str, str, str]], ...]] = (
    (
        "영업시간은 평일 오전 9시부터 오후 6시까지이고, 점심시간은 12시부터 1시까지입니다.",
        ("몇 시까지 영업하세요?", "점심시간이 언제예요?", "What are your opening hours?"),
    ),
    (
        "사무실은 서울 강남구 테헤란로 123, 한빛빌딩 5층에 있습니다.",
        ("사무실 주소가 어떻게 되나요?", "어디로 찾아가면 돼요?", "Where is your office located?"),
    ),
    (
        "건물 지하 2층 주차장을 이용하시면 2시간까지 무료 주차가 됩니다.",
        ("주차 가능한가요?", "차 가지고 가도 되나요?", "Is there free parking?"),
    ),
    (
        "상담 예약은 전화나 홈페이지 예약 페이지에서 하실 수 있습니다.",
        ("예약은 어떻게 해요?", "상담 잡으려면 어떻게 하나요?", "How can I book a consultation?"),
    ),
    (
        "제품 환불은 구매 후 7일 이내에 영수증을 가지고 오시면 가능합니다.",
        ("환불 받을 수 있나요?", "산 지 5일 됐는데 반품돼요?", "Can I get a refund?"),
    ),
    (
        "김민수 대표는 다음 주 월요일부터 수요일까지 부산 출장 중입니다.",
        ("대표님 언제 돌아오세요?", "김 대표님 지금 계세요?", "Is Mr. Kim in the office next week?"),
    ),
    (
        "배송은 결제 후 보통 2~3일이 걸리고, 제주도는 하루 더 걸립니다.",
        ("배송 얼마나 걸려요?", "언제 도착하나요?", "How long does delivery take?"),
    ),
    (
        "기본 상담료는 30분에 5만원이며 부가세는 별도입니다.",
        ("상담 비용이 얼마예요?", "상담료가 어떻게 되나요?", "How much is a consultation?"),
    ),
    (
        "카드 결제와 계좌이체 모두 가능하고, 현금영수증도 발급해 드립니다.",
        ("카드로 결제돼요?", "계좌이체 되나요?", "Do you accept credit cards?"),
    ),
    ("매주 일요일과 공휴일은 휴무입니다.", ("일요일에도 문 여나요?", "공휴일에 쉬어요?", "Are you open on Sundays?")),
    (
        "The clinic accepts walk-in patients on Saturday mornings from 9 to 12.",
        (
            "Can I come in without an appointment on Saturday?",
            "Do you take walk-ins?",
            "토요일에 예약 없이 가도 되나요?",
        ),
    ),
    (
        "Our Wi-Fi password for guests is printed on the reception desk.",
        ("What's the wifi password?", "How do I get on the guest wifi?", "와이파이 비밀번호가 뭐예요?"),
    ),
    (
        "Invoices are emailed on the first business day of each month.",
        ("When do you send invoices?", "When will I get my bill?", "청구서는 언제 보내주세요?"),
    ),
    (
        "The nearest subway station is Gangnam Station, exit 11, a five-minute walk.",
        ("Which subway station is closest?", "How do I get there by metro?", "지하철역에서 가까운가요?"),
    ),
    (
        "We offer a 10 percent discount for students with a valid ID.",
        ("Do you have a student discount?", "Is there a discount for students?", "학생 할인 있어요?"),
    ),
    (
        "Pets are not allowed inside the office, except guide dogs.",
        ("Can I bring my dog?", "Are pets allowed?", "강아지 데리고 가도 돼요?"),
    ),
)

UNRELATED: Final[tuple[str, ...]] = (
    "축구 경기 결과 알려줘",
    "오늘 저녁 뭐 먹지?",
    "내일 비 와요?",
    "주식 시장 전망이 어때요?",
    "노래 하나 불러 주세요",
    "파이썬 공부 어떻게 해요?",
    "채용 공고 있나요?",
    "사장님 결혼하셨어요?",
    "컴퓨터 수리도 하세요?",
    "비행기 표 예매해 주세요",
    "요즘 볼 만한 영화 있어요?",
    "우리 아이 숙제 좀 도와주세요",
    "감기에 좋은 음식이 뭐예요?",
    "환율이 얼마예요?",
    "What's the capital of France?",
    "My cat is sick",
    "Tell me a joke",
    "Who won the election?",
    "How tall is Mount Everest?",
    "What's two plus two?",
    "Do you sell gift cards?",
    "Can you fix my car?",
    "Is there a dress code?",
    "Do you ship internationally?",
    "What's your favourite colour?",
    "Are you hiring interns?",
)

PARAPHRASES: Final[tuple[tuple[str, str], ...]] = (
    ("영업시간은 오전 9시부터 오후 6시까지입니다.", "아침 9시에 문을 열고 저녁 6시에 닫습니다."),
    ("주차는 2시간까지 무료입니다.", "두 시간 동안은 주차비를 받지 않습니다."),
    ("대표님은 이번 주에 출장 중이십니다.", "대표님이 이번 주에는 출장을 가 계십니다."),
    ("환불은 7일 이내에만 가능합니다.", "구매 후 일주일이 지나면 환불이 안 됩니다."),
    ("예약은 전화로 해 주세요.", "전화로 예약하시면 됩니다."),
    ("We are closed on Sundays.", "The office does not open on Sundays."),
    ("Delivery takes two to three days.", "Orders arrive within two or three days."),
    ("Students get a ten percent discount.", "There is a 10% reduction for students."),
    ("영업시간은 오전 9시부터 오후 6시까지입니다.", "We are open from 9 am to 6 pm."),
    ("주차는 2시간까지 무료입니다.", "Parking is free for two hours."),
)

_FALSE_ACCEPT_TARGET: Final = 0.05


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """Score distributions of one embedder on the calibration set.

    Attributes:
        model: The embedder's ``name``.
        positives: Score of each question against its own fact.
        unrelated: Best score of each unanswerable question over all facts.
        paraphrases: Score of each statement paraphrase pair.
        top1_accuracy: Share of questions whose own fact ranks first.
        top3_accuracy: Share of questions whose own fact is in the top 3.
        threshold: Suggested threshold (false accepts <= 5 % on ``unrelated``).
        recall_at_threshold: Share of ``positives`` at or above ``threshold``.
        false_accepts_at_threshold: Share of ``unrelated`` at or above ``threshold``.
    """

    model: str
    positives: tuple[float, ...]
    unrelated: tuple[float, ...]
    paraphrases: tuple[float, ...]
    top1_accuracy: float
    top3_accuracy: float
    threshold: float
    recall_at_threshold: float
    false_accepts_at_threshold: float

    def summary(self) -> dict[str, object]:
        """Percentiles and rates, rounded, for logs and benchmark output."""

        def pct(values: tuple[float, ...]) -> dict[str, float]:
            arr = np.asarray(values)
            return {f"p{q}": round(float(np.percentile(arr, q)), 3) for q in (5, 25, 50, 75, 95)}

        return {
            "model": self.model,
            "question_to_fact": pct(self.positives),
            "unrelated_best": pct(self.unrelated),
            "paraphrase_pairs": pct(self.paraphrases),
            "top1_accuracy": round(self.top1_accuracy, 3),
            "top3_accuracy": round(self.top3_accuracy, 3),
            "threshold": self.threshold,
            "recall_at_threshold": round(self.recall_at_threshold, 3),
            "false_accepts_at_threshold": round(self.false_accepts_at_threshold, 3),
        }


def calibrate(embedder: Embedder) -> CalibrationReport:
    """Measure ``embedder`` on the calibration set and suggest its threshold; blocking."""
    facts = embedder.embed([fact for fact, _ in FACTS], purpose="document")
    questions = [question for _, asked in FACTS for question in asked]
    owners = np.repeat(np.arange(len(FACTS)), [len(asked) for _, asked in FACTS])
    scores = embedder.embed(questions, purpose="query") @ facts.T
    own = scores[np.arange(len(questions)), owners]
    ranks = (scores > own[:, None]).sum(axis=1)
    unrelated = (embedder.embed(list(UNRELATED), purpose="query") @ facts.T).max(axis=1)
    left = embedder.embed([a for a, _ in PARAPHRASES])
    right = embedder.embed([b for _, b in PARAPHRASES])
    paraphrases = np.einsum("ij,ij->i", left, right)
    threshold = _false_accept_threshold(unrelated, _FALSE_ACCEPT_TARGET)
    return CalibrationReport(
        model=embedder.name,
        positives=tuple(float(s) for s in own),
        unrelated=tuple(float(s) for s in unrelated),
        paraphrases=tuple(float(s) for s in paraphrases),
        top1_accuracy=float(np.mean(ranks == 0)),
        top3_accuracy=float(np.mean(ranks < 3)),
        threshold=threshold,
        recall_at_threshold=float(np.mean(own >= threshold)),
        false_accepts_at_threshold=float(np.mean(unrelated >= threshold)),
    )


def _false_accept_threshold(unrelated: np.ndarray, target: float) -> float:
    """Lowest multiple of 0.01 that at most ``target`` of ``unrelated`` reach."""
    ordered = np.sort(unrelated)[::-1]
    allowed = math.floor(target * len(ordered))  # how many may reach the threshold
    ceiling = float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1])
    return round(math.floor(ceiling * 100 + 1e-9) / 100 + 0.01, 2)
