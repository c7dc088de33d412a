"""The directory the console publishes and the ARI app follows (contract.directory, ariapp.calls.extensions)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from aipbx.directory import dialplan_global, load_directory, parse_directory
from ariapp.calls.extensions import DirectoryFollower, endpoint_objects, load_cache, parse_payload, save_cache
from ariapp.calls.hold_music import hold_music_for
from contract.directory import BadDirectory, DirectoryPayload, decode, directory_channel, directory_key
from stack.config import REPO

SEED = load_directory(REPO / "asterisk" / "extensions.yaml")


def payload(document: dict, revision: int = 7) -> str:
    return DirectoryPayload(revision, document).encode()


def test_the_seed_round_trips_through_the_payload_unchanged() -> None:
    revision, directory = parse_payload(payload(SEED.as_document()))
    assert revision == 7
    assert directory == SEED


def test_keys_are_in_the_instance_namespace() -> None:
    assert directory_key("dev") == "aipbx:dev:directory"
    assert directory_channel("dev").startswith("aipbx:dev:")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"version": 2, "revision": 1, "directory": {}}', "version 2"),
        ('{"version": 1, "revision": -1, "directory": {}}', "revision"),
        ('{"version": 1, "revision": 1}', "'directory'"),
    ],
)
def test_a_broken_frame_is_refused_with_the_reason(raw: str, says: str) -> None:
    with pytest.raises(BadDirectory, match=says):
        decode(raw)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"no_answer_timeout": 0}, "no_answer_timeout"),
        ({"no_answer_timeout": "5"}, "no_answer_timeout"),
        ({"language": "fr-FR"}, "language"),
        ({"ai": "yes"}, "ai must be true or false"),
        ({"hold_music": "../../etc/passwd.wav"}, "hold_music"),
        ({"hold_music_volume": 150}, "hold_music_volume"),
        ({"sip_password": "short"}, "sip_password"),
        ({"voice": "a voice; rm"}, "voice"),
        ({"business": "x" * 129}, "business"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_extension_and_field(change: dict, says: str) -> None:
    document = SEED.as_document()
    document["extensions"][1].update(change)
    with pytest.raises(BadDirectory, match=says) as refused:
        parse_payload(payload(document))
    assert "extensions[1]" in str(refused.value)


class FakeRedis:
    def __init__(self) -> None:
        self.value: str | None = None

    async def get(self, key: str) -> str | None:
        return self.value


def test_the_follower_applies_a_new_revision_once_and_keeps_the_last_good_one_on_bad_input() -> None:
    applied: list[tuple[int, object]] = []

    async def on_change(revision, directory) -> None:
        applied.append((revision, directory))

    async def scenario() -> None:
        redis, follower = FakeRedis(), DirectoryFollower("redis://unused", "dev", 0, on_change)
        assert await follower.check(redis) is False  # nothing published yet: the seed stays
        document = SEED.as_document()
        document["extensions"][0]["greeting"] = "A new greeting. This call is recorded."
        redis.value = payload(document, revision=5)
        assert await follower.check(redis) is True
        assert await follower.check(redis) is False  # the same revision is not applied again
        broken = SEED.as_document()
        broken["extensions"][0]["no_answer_timeout"] = 9999
        redis.value = payload(broken, revision=6)
        assert await follower.check(redis) is False
        redis.value = "{garbage"
        assert await follower.check(redis) is False
        assert follower.revision == 5 and follower.refused == 2

    asyncio.run(scenario())
    assert len(applied) == 1
    revision, directory = applied[0]
    assert revision == 5 and directory.get("1001").greeting == "A new greeting. This call is recorded."


def test_the_cache_lets_the_app_start_with_the_last_directory(tmp_path: Path) -> None:
    document = SEED.as_document()
    document["extensions"][2]["ai"] = False
    _, directory = parse_payload(payload(document))
    save_cache(tmp_path, 42, directory)
    assert load_cache(tmp_path) == (42, directory)
    (tmp_path / "directory.json").write_text("{broken")
    assert load_cache(tmp_path) is None  # then the YAML seed is used
    assert load_cache(tmp_path / "missing") is None


def test_the_dialplan_global_carries_ring_time_recording_notice_and_ai() -> None:
    directory = parse_directory(
        {
            "recording_notice": {"en-US": "Recorded.", "ko-KR": ""},
            "extensions": [
                {"ext": "1001", "owner": "A", "no_answer_timeout": 7},
                {"ext": "1002", "owner": "B", "ai": False, "language": "ko-KR"},
                {"ext": "1003", "owner": "C", "recording": "off"},
            ],
        }
    )
    values = dict(dialplan_global(ext, directory) for ext in directory)
    assert values == {
        "AIPBX_EXT_1001": "7/learn/recording-notice-en-US/1",
        "AIPBX_EXT_1002": "10/learn//0",
        "AIPBX_EXT_1003": "10/off//1",
    }
    assert dialplan_global(directory.get("1001"), directory, ring_override=2)[1].startswith("2/")


def test_a_console_made_extension_gets_endpoint_auth_and_aor_like_the_seed() -> None:
    ext = parse_directory({"extensions": [{"ext": "1077", "owner": 'Desk "7"', "sip_password": "x" * 24}]}).get("1077")
    objects = {(kind, object_id): fields for kind, object_id, fields in endpoint_objects(ext, "ulaw,alaw", 120)}
    assert objects[("auth", "1077-auth")] == {"auth_type": "userpass", "username": "1077", "password": "x" * 24}
    endpoint = objects[("endpoint", "1077")]
    assert (endpoint["auth"], endpoint["aors"], endpoint["context"]) == ("1077-auth", "1077", "from-internal")
    assert endpoint["callerid"] == '"Desk 7" <1077>'
    assert objects[("aor", "1077")]["max_contacts"] == "1" and objects[("aor", "1077")]["remove_existing"] == "yes"
    # the auth and AOR exist before the endpoint that names them
    assert [kind for kind, _, _ in endpoint_objects(ext, "ulaw", 0)] == ["auth", "aor", "endpoint"]


def _wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.astype("<i2").tobytes())


def test_uploaded_hold_music_plays_at_its_volume_looped_to_length(tmp_path: Path) -> None:
    tone = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 10000).astype(np.int16)
    _wav(tmp_path / "1001-abc.wav", np.repeat(tone, 2), 16000, channels=2)  # stereo, 1 s at 16 kHz
    music = hold_music_for(tmp_path, "1001-abc.wav", 50)
    assert music is not None
    pcm = music(8000, 2.5)  # resampled to the call's rate, looped to 2.5 s
    assert pcm.size == 20000
    assert 4000 < np.abs(pcm).max() <= 5100  # half of 10000
    spectrum = np.abs(np.fft.rfft(pcm[:8000]))
    assert abs(np.argmax(spectrum) * 8000 / 8000 - 440) < 5


def test_missing_hold_music_falls_back_to_the_built_in_tune(tmp_path: Path) -> None:
    music = hold_music_for(tmp_path, "gone.wav", 100)
    assert music is not None and np.abs(music(8000, 1.0)).max() > 500  # not silence
    assert hold_music_for(tmp_path, "", 100) is None  # the built-in tune, untouched
    quiet = hold_music_for(tmp_path, "", 0)
    assert quiet is not None and np.abs(quiet(8000, 1.0)).max() == 0


def test_a_named_voice_is_built_once_and_a_refused_one_falls_back_to_the_default() -> None:
    from ariapp.calls.session import Engine

    class Voice:
        def __init__(self, name: str) -> None:
            self.name = name

    built: list[tuple[str, str]] = []

    def factory(language: str, name: str):
        built.append((language, name))
        if name == "bad":
            raise ValueError("no such voice")
        return Voice(name)

    default = Voice("default")
    engine = Engine(None, default, None, voices={"en-US": default}, voice_factory=factory)  # type: ignore[arg-type]
    assert engine.voice("en-US") is default
    first = engine.voice("en-US", "alto")
    assert first.name == "alto" and engine.voice("en-US", "alto") is first and built == [("en-US", "alto")]
    assert engine.voice("en-US", "bad") is default
    assert engine.forget_voice("en-US", "alto") is default and engine.voice("en-US", "alto") is default
