"""The offline providers end to end with the real packaged models (no mocks).

Piper speaks, the audio crosses a simulated telephone leg (22.05 kHz -> 8 kHz
-> G.711 mu-law -> 8 kHz -> 16 kHz) and Whisper has to understand it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything can import huggingface_hub

from aipbx.audio.g711 import ulaw_decode, ulaw_encode
from aipbx.audio.resample import resample
from aipbx.providers.base import SpeechToText, TextToSpeech
from aipbx.providers.errors import ProviderBadInput, ProviderUnavailable
from aipbx.providers.local import EspeakTTS, PiperTTS, WhisperSTT, normalize_english_times
from aipbx.providers.local.models import resolve_whisper_model
from aipbx.providers.local.stt import _Decoded, cut_short, said_once
from aipbx.providers.local.turn import SmartTurn
from ariapp.conversation.turns import BACKCHANNEL_HINTS, INCOMPLETE_BELOW, backchannel

# Whisper base and tiny.en plus Piper: about 20 s on 2 cores, most of it model loading and decoding.
pytestmark = pytest.mark.slow

MEETING = "The team meeting is on Monday at ten am in room three."
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")


def telephone_leg(pcm: np.ndarray, rate: int) -> np.ndarray:
    """What an Asterisk caller's audio looks like by the time it reaches STT."""
    narrowband = resample(pcm, rate, 8000)
    return resample(ulaw_decode(ulaw_encode(narrowband)), 8000, 16000)


@pytest.fixture(scope="module")
def whisper_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def meeting_over_the_phone() -> np.ndarray:
    # noise 0 makes Piper deterministic; with the voice's default noise, "in room"
    # is heard as "and run" in roughly one rendering out of five.
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    speech = asyncio.run(tts.synthesize_all(MEETING))
    assert tts.sample_rate == 22050
    return telephone_leg(speech, tts.sample_rate)


async def max_loop_stall(work: Awaitable[object]) -> float:
    """Run ``work`` while a 5 ms ticker measures the longest gap between ticks."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with asyncio.TaskGroup() as tg:
        tg.create_task(ticker())
        try:
            await work
        finally:
            done.set()
    return max(gaps)


def test_providers_satisfy_the_protocols(whisper_cache: Path) -> None:
    assert isinstance(WhisperSTT("tiny.en"), SpeechToText)
    assert isinstance(WhisperSTT("base", cache_dir=whisper_cache), SpeechToText)
    assert isinstance(PiperTTS(), TextToSpeech)


@pytest.mark.parametrize("model", ["tiny.en", "base"])
async def test_whisper_understands_piper_through_g711(
    model: str, meeting_over_the_phone: np.ndarray, whisper_cache: Path
) -> None:
    # given
    stt = WhisperSTT(model, cache_dir=whisper_cache)

    # when
    transcript = await stt.transcribe(meeting_over_the_phone)

    # then
    words = transcript.text.lower().replace(".", " ").replace(",", " ").split()
    assert "monday" in words, transcript.text
    assert {"ten", "10", "10am"} & set(words), transcript.text
    assert "room" in words, transcript.text
    assert transcript.is_final
    assert transcript.language == "en"
    assert transcript.confidence is not None and 0.5 < transcript.confidence <= 1.0
    assert 2.0 < transcript.duration_s < 4.0
    # measured, not judged: a loaded CI box is no place for speed (`python -m bench recognition` is)
    assert transcript.compute_s > 0


@pytest.mark.parametrize("model", ["tiny.en", "base"])
async def test_a_shortened_encoder_window_hears_the_same_words_once(
    model: str, meeting_over_the_phone: np.ndarray, whisper_cache: Path
) -> None:
    # given: the default recogniser (the utterance plus 10 s) and whisper's whole 30 s window
    short = WhisperSTT(model, language="en", cache_dir=whisper_cache)
    whole = WhisperSTT(model, language="en", cache_dir=whisper_cache, window_pad_s=None)
    assert short._window_frames(len(meeting_over_the_phone)) is not None

    # when
    heard_short = await short.transcribe(meeting_over_the_phone)
    heard_whole = await whole.transcribe(meeting_over_the_phone)

    # then: the same sentence, said once (a decoder that sees no end of the audio repeats it)
    def words(text: str) -> list[str]:
        return text.lower().replace(".", " ").replace(",", " ").split()

    for heard in (heard_short, heard_whole):
        assert {"monday", "room"} <= set(words(heard.text)), heard.text
    assert words(heard_short.text).count("monday") == 1, heard_short.text
    assert abs(len(words(heard_short.text)) - len(words(heard_whole.text))) <= 2, (heard_short.text, heard_whole.text)
    assert heard_short.confidence is not None and 0.5 < heard_short.confidence <= 1.0


async def test_an_utterance_too_long_for_a_shortened_window_is_heard_whole(meeting_over_the_phone: np.ndarray) -> None:
    stt = WhisperSTT("tiny.en")
    silence = np.zeros(20 * 16000, dtype=np.int16)
    long = np.concatenate([silence, meeting_over_the_phone])  # 20 s of nothing, then the sentence

    transcript = await stt.transcribe(long)

    assert stt._window_frames(len(long)) is None
    assert "monday" in transcript.text.lower(), transcript.text


async def test_whisper_hears_the_names_it_is_told_to_expect() -> None:
    # given questions naming what only this callee's knowledge holds (tiny.en, alone, hears
    # "Does Doctor?" and "Kak-up pay"), spoken deterministically over the phone
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    stt = WhisperSTT(model="tiny.en")
    hints = ["Dr. Hana Choi", "Hanbit Building", "Chuseok", "Dr. Minsu Park", "Kakao Pay"]
    heard = {}
    for question in ("Does Dr. Minsu Park work Mondays?", "Can I pay with Kakao Pay?"):
        phone = telephone_leg(await tts.synthesize_all(question), tts.sample_rate)
        heard[question] = (await stt.transcribe(phone, "en", hints)).text
    # then the names are heard as the knowledge spells them
    assert "Minsu Park" in heard["Does Dr. Minsu Park work Mondays?"], heard
    assert "Kakao Pay" in heard["Can I pay with Kakao Pay?"], heard
    # and the names are not invented where nobody speaks
    line_noise = np.random.default_rng(1).normal(0, 300, 32000).astype(np.int16)
    assert (await stt.transcribe(line_noise, "en", hints)).text == ""


async def test_a_reply_the_prompt_talked_away_is_heard_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a decoder that, after the names' prompt, hears nothing in a short "Yeah." (as tiny.en does
    # about one time in five with the noisy voice) and "Yeah." without it
    stt = WhisperSTT(model="tiny.en")
    prompts: list[str] = []

    def decode_once(audio, language, prompt):
        prompts.append(prompt)
        return _Decoded("" if prompt else "Yeah.", language, None if prompt else 0.9)

    monkeypatch.setattr(stt, "_decode_once", decode_once)
    yeah = (np.sin(np.arange(8000) / 3) * 8000).astype(np.int16)
    # when it is told names to expect
    heard = await stt.transcribe(yeah, "en", ["Dr. Minsu Park"])
    # then the reply is still heard: decoded again without the prompt
    assert heard.text == "Yeah."
    assert prompts == ["A caller asks about Dr. Minsu Park.", ""]


async def test_a_question_the_prompt_cut_after_its_first_sentence_is_heard_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a decoder that, after the names' prompt, stops after the introduction of a 4 s question
    # (tiny.en did so in 4 of 8 renderings of the Docker test's question) and hears it all without it
    stt = WhisperSTT(model="tiny.en")
    prompts: list[str] = []
    whole = "Hi, this is Alex from Acme. When is the team meeting next week?"

    def decode_once(audio, language, prompt):
        prompts.append(prompt)
        return _Decoded("Hi, this is Alex from Acme." if prompt else whole, language, 0.8)

    monkeypatch.setattr(stt, "_decode_once", decode_once)
    question = (np.sin(np.arange(4 * 16000) / 3) * 8000).astype(np.int16)
    # when it is told names to expect
    heard = await stt.transcribe(question, "en", ["Jiyoung Lee"])
    # then the question is heard whole: too few letters for 4 s, decoded again without the prompt
    assert heard.text == whole
    assert prompts == ["A caller asks about Jiyoung Lee.", ""]
    # and a transcript as long as its audio is not decoded twice
    prompts.clear()
    monkeypatch.setattr(stt, "_decode_once", lambda a, lang, p: prompts.append(p) or _Decoded(whole, lang, 0.8))
    assert (await stt.transcribe(question, "en", ["Jiyoung Lee"])).text == whole and len(prompts) == 1


@pytest.mark.parametrize(
    ("text", "seconds", "short"),
    [
        ("Hi, this is Alex from Acme.", 4.3, True),  # 22 letters for 4.3 s
        ("Hi, this is Alex from Acme. When is the team meeting next week?", 4.3, False),
        ("Yes.", 0.8, False),  # too short to tell
        ("토요일에 문 여나요?", 2.5, False),  # 7 syllables in 2.5 s
        ("네.", 3.0, True),
    ],
)
def test_a_transcript_too_short_for_its_audio(text: str, seconds: float, short: bool) -> None:
    assert cut_short(text, seconds) is short


async def test_a_clear_sentence_after_a_silence_is_heard_though_its_start_looks_like_no_speech() -> None:
    # given the AI's own answer as a phone records it, two seconds into the audio (a voicemail, a
    # recording, a caller who waits): whisper base gives it a no-speech probability of 0.71
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    answer = await tts.synthesize_all(
        "Dr. Jee Young Lee, the clinic director, does general dentistry, crowns and implants. "
        "She sees patients on Mondays, Wednesdays, Fridays and Saturdays."
    )
    pause = np.zeros(2 * tts.sample_rate, dtype=np.int16)
    phone = telephone_leg(np.concatenate([pause, answer, pause]), tts.sample_rate)
    # when it is transcribed
    heard = (await WhisperSTT(model="base").transcribe(phone, "en")).text.lower()
    # then the words are kept: the model is sure of them (whisper drops only "no speech" and unsure)
    assert "clinic director" in heard and "saturdays" in heard, heard


@pytest.mark.parametrize("model", ["tiny.en", "base"])
async def test_whisper_hears_nothing_in_silence_or_line_noise(model: str, whisper_cache: Path) -> None:
    stt = WhisperSTT(model, language="en", cache_dir=whisper_cache)  # the shortened window's guards
    silence = np.zeros(16000, dtype=np.int16)
    hiss = np.random.default_rng(7).normal(0, 300, 16000).astype(np.int16)  # about -40 dBFS

    quiet = await stt.transcribe(silence)
    noisy = await stt.transcribe(hiss)

    assert quiet.text == ""
    assert quiet.is_empty
    assert len(noisy.text.split()) <= 1, f"hallucinated {noisy.text!r}"


async def test_whisper_model_is_loaded_once_per_process() -> None:
    first, second = WhisperSTT("tiny.en"), WhisperSTT(resolve_whisper_model("tiny.en"))

    await first.warmup()
    await second.warmup()

    assert first._model is not None and first._model is second._model


async def test_transcription_does_not_block_the_event_loop(meeting_over_the_phone: np.ndarray) -> None:
    stt = WhisperSTT("tiny.en")
    await stt.warmup()

    stall = await max_loop_stall(stt.transcribe(meeting_over_the_phone))

    assert stall < 0.1, f"event loop stalled {stall * 1000:.0f} ms"


async def test_whisper_rejects_audio_in_the_wrong_format() -> None:
    stt = WhisperSTT("tiny.en")

    with pytest.raises(ProviderBadInput, match="int16"):
        await stt.transcribe(np.zeros(16000, dtype=np.float32))
    with pytest.raises(ProviderBadInput, match="mono"):
        await stt.transcribe(np.zeros((16000, 2), dtype=np.int16))
    with pytest.raises(ProviderBadInput, match="English"):
        await stt.transcribe(np.ones(16000, dtype=np.int16), language="ko")


def test_whisper_with_a_bad_model_directory_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="missing model.bin"):
        (tmp_path / "config.json").write_text("{}")
        (tmp_path / "tokenizer.json").write_text("{}")
        (tmp_path / "vocabulary.txt").write_text("")
        WhisperSTT(tmp_path)


async def test_piper_streams_one_chunk_per_sentence_as_soon_as_it_exists() -> None:
    tts = PiperTTS()
    await tts.warmup()
    text = "Thanks for calling. Anna is in a meeting. Can I take a message?"

    started = time.perf_counter()
    arrivals: list[float] = []
    chunks: list[np.ndarray] = []
    async for chunk in tts.synthesize(text):
        arrivals.append(time.perf_counter() - started)
        chunks.append(chunk)

    assert len(chunks) == 3
    assert all(c.dtype == np.int16 and c.ndim == 1 and len(c) > 0 for c in chunks)
    assert arrivals[0] < arrivals[-1]
    total_s = sum(len(c) for c in chunks) / tts.sample_rate
    assert 3.0 < total_s < 8.0
    assert arrivals[-1] < total_s, "slower than real time"
    assert int(np.max(np.abs(np.concatenate(chunks)))) <= int(0.86 * 32767), "no headroom"


async def test_piper_can_be_abandoned_mid_stream() -> None:
    tts = PiperTTS()
    stream = tts.synthesize("One sentence. Another sentence. A third sentence. And a fourth one.")

    first = await anext(stream)
    await stream.aclose()  # the caller barged in
    after = await tts.synthesize_all("Still working.")

    assert len(first) > 0 and len(after) > 0


async def test_piper_synthesis_does_not_block_the_event_loop() -> None:
    tts = PiperTTS()
    await tts.warmup()

    stall = await max_loop_stall(tts.synthesize_all(MEETING + " " + MEETING))

    assert stall < 0.1, f"event loop stalled {stall * 1000:.0f} ms"


@pytest.mark.parametrize("text", ["", "   \n"])
async def test_tts_refuses_empty_text(text: str) -> None:
    with pytest.raises(ProviderBadInput, match="empty"):
        await PiperTTS().synthesize_all(text)


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("at ten am in room three", "at ten a.m. in room three"),
        ("from 9 am to 10:30 AM", "from 9 a.m. to 10:30 a.m."),
        ("eleven o'clock am", "eleven o'clock a.m."),
        ("I am here at ten pm", "I am here at ten pm"),
        ("which one am I", "which one am I"),
    ],
)
def test_english_times_are_spelt_for_the_phonemizer(text: str, spoken: str) -> None:
    assert normalize_english_times(text) == spoken


@needs_espeak
async def test_espeak_speaks_english_that_whisper_understands() -> None:
    tts = EspeakTTS("en-us")

    chunks = [chunk async for chunk in tts.synthesize("Please call me back on Monday.")]
    speech = np.concatenate(chunks)
    transcript = await WhisperSTT("tiny.en").transcribe(telephone_leg(speech, tts.sample_rate))

    assert all(c.dtype == np.int16 for c in chunks)
    assert 1.0 < len(speech) / tts.sample_rate < 4.0
    assert "monday" in transcript.text.lower(), transcript.text


@needs_espeak
async def test_espeak_speaks_korean() -> None:
    speech = await EspeakTTS("ko").synthesize_all("안녕하세요. 무엇을 도와드릴까요?")

    assert len(speech) / 22050 > 1.0
    assert int(np.max(np.abs(speech))) > 1000


@needs_espeak
async def test_espeak_unknown_voice_is_bad_input() -> None:
    with pytest.raises(ProviderBadInput, match="voice does not exist"):
        await EspeakTTS("zz-nonexistent").synthesize_all("hello")


def test_espeak_missing_executable_says_what_to_install() -> None:
    with pytest.raises(ProviderUnavailable, match="apt-get install espeak-ng"):
        EspeakTTS(executable="espeak-ng-not-installed")


@pytest.mark.parametrize(
    ("decoded", "heard"),
    [
        ("No? No?", "No?"),  # a one-word reply the shortened window looped on
        ("We open at 9. We open at 9.", "We open at 9."),
        ("아니요. 아니요.", "아니요."),
        ("Yes. Yes, please.", "Yes. Yes, please."),  # not the same sentence: both kept
        ("Hello, I'm calling. Could you tell me?", "Hello, I'm calling. Could you tell me?"),
        (". .", ""),  # line noise decoded as punctuation: nothing said
        ("Yes. ?", "Yes."),
    ],
)
def test_a_sentence_repeated_word_for_word_is_heard_once(decoded: str, heard: str) -> None:
    assert said_once(decoded) == heard


async def test_the_turn_model_hears_a_thought_left_open_and_a_question_finished() -> None:
    # given the caller's voice over the phone, with the 0.3 s of silence that ends an utterance
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    model = SmartTurn()
    silence = np.zeros(int(0.3 * tts.sample_rate), dtype=np.int16)

    async def complete(text: str) -> float:
        return await model.complete(telephone_leg(np.concatenate([await tts.synthesize_all(text), silence]), 22050))

    # then a thought that stops on "because" or "um" is heard going on, surely enough to wait for it
    assert await complete("Hi, I was calling because") < INCOMPLETE_BELOW
    assert await complete("So I was wondering, um") < INCOMPLETE_BELOW
    # and a question is heard finished
    assert await complete("What time do you close on Saturdays?") > 0.5
    # and it only takes int16 audio
    with pytest.raises(ProviderBadInput):
        await model.complete(np.zeros(1600, dtype=np.float32))


async def test_a_hum_over_the_reply_is_heard_as_one_when_the_recogniser_expects_it() -> None:
    # given "Mm-hmm." over the phone, which tiny.en alone hears as words ("in my mom.")
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    stt = WhisperSTT(model="tiny.en")

    async def heard(text: str, hints=()) -> str:
        return (await stt.transcribe(telephone_leg(await tts.synthesize_all(text), 22050), "en", hints)).text

    assert not backchannel(await heard("Mm-hmm."))
    # when it is told to expect a backchannel, it hears one
    assert backchannel(await heard("Mm-hmm.", BACKCHANNEL_HINTS["en"]))
    # and a short interruption stays what it is
    for words in ("What about Sunday?", "Wait.", "No, stop."):
        assert not backchannel(await heard(words, BACKCHANNEL_HINTS["en"])), words
