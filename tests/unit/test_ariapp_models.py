"""Tests for ariapp.ari.models on recorded-shape Asterisk 22 ARI events (tests/fixtures/ari/)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ariapp.ari.models import AriEvent, AriParseError, Channel, parse_time

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ari"


def raw(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def test_stasis_start_with_args() -> None:
    event = AriEvent.parse(raw("stasis_start_missed"))

    assert event.type == "StasisStart"
    assert event.application == "aipbx"
    assert event.args == ["missed", "1002", "NOANSWER"]
    assert event.timestamp == datetime(2026, 11, 25, 14, 31, 47, 402000, tzinfo=UTC)
    channel = event.channel
    assert channel is not None
    assert channel.id == "1764081097.11"
    assert (channel.technology, channel.endpoint) == ("PJSIP", "1001")
    assert (channel.caller_number, channel.caller_name) == ("1001", "Minsu Kim")
    assert (channel.context, channel.exten, channel.state) == ("aipbx-call", "s", "Ring")
    assert channel.language == "en"
    assert channel.channelvars == {"AIPBX_CALL_ID": "1764081097.11"}
    assert channel.creationtime == datetime(2026, 11, 25, 14, 31, 37, 123000, tzinfo=UTC)


def test_args_are_strings_and_default_to_empty() -> None:
    data = raw("stasis_start_missed")
    data["args"] = ["missed", 1002]

    assert AriEvent.parse(data).args == ["missed", "1002"]
    del data["args"]
    assert AriEvent.parse(data).args == []


def test_channel_varset() -> None:
    event = AriEvent.parse(raw("channel_varset_call_id"))

    assert event.type == "ChannelVarset"
    assert event.raw["variable"] == "__AIPBX_CALL_ID"
    assert event.raw["value"] == event.channel.id == "1764081097.11"
    assert (event.channel.context, event.channel.exten) == ("from-internal", "1002")
    assert event.channel.channelvars == {}


def test_global_varset_has_no_channel() -> None:
    data = raw("channel_varset_call_id")
    del data["channel"]

    assert AriEvent.parse(data).channel is None


def test_dial_has_caller_peer_and_status_but_no_channel() -> None:
    event = AriEvent.parse(raw("dial_answer"))

    assert event.type == "Dial"
    assert event.channel is None
    assert event.raw["dialstatus"] == "ANSWER"
    assert event.caller.id == "1764081097.11"
    assert event.caller.connected_number == "1002"
    peer = event.peer
    assert peer is not None
    assert (peer.id, peer.name, peer.endpoint, peer.state) == ("1764081097.12", "PJSIP/1002-00000005", "1002", "Up")


def test_dial_without_caller_or_peer() -> None:
    data = raw("dial_answer")
    del data["caller"], data["peer"]

    event = AriEvent.parse(data)

    assert event.caller is None
    assert event.peer is None


def test_channel_destroyed_with_cause() -> None:
    event = AriEvent.parse(raw("channel_destroyed"))

    assert event.type == "ChannelDestroyed"
    assert event.raw["cause"] == 16
    assert event.raw["cause_txt"] == "Normal Clearing"
    assert event.channel.id == "1764081097.11"


def test_channel_hangup_request() -> None:
    event = AriEvent.parse(raw("channel_hangup_request"))

    assert event.type == "ChannelHangupRequest"
    assert event.raw["cause"] == 16
    assert event.channel.endpoint == "1002"
    assert event.channel.connected_number == "1001"


def test_unknown_fields_are_ignored_and_raw_is_kept() -> None:
    data = raw("channel_destroyed")
    data["something_new_in_asterisk_23"] = {"x": 1}
    data["channel"]["another_new_field"] = [1, 2]

    event = AriEvent.parse(data)

    assert event.raw is data
    assert event.channel.id == "1764081097.11"


@pytest.mark.parametrize(
    ("name", "technology", "endpoint"),
    [
        ("PJSIP/1002-00000003", "PJSIP", "1002"),
        ("PJSIP/1001-0000000a", "PJSIP", "1001"),
        ("PJSIP/1002", "PJSIP", "1002"),
        ("UnicastRTP/127.0.0.1:40000-00000007", "UnicastRTP", "127.0.0.1:40000"),
        ("PJSIP/trunk-provider-0000001f", "PJSIP", "trunk-provider"),
    ],
)
def test_endpoint_strips_technology_and_sequence(name: str, technology: str, endpoint: str) -> None:
    channel = Channel.parse({"id": "1.1", "name": name})

    assert channel.technology == technology
    assert channel.endpoint == endpoint


def test_minimal_channel_gets_empty_defaults() -> None:
    channel = Channel.parse({"id": "1.1"})

    assert (channel.name, channel.state, channel.caller_number, channel.exten) == ("", "", "", "")
    assert channel.creationtime is None
    assert channel.channelvars == {}


def test_channelvars_values_become_strings() -> None:
    channel = Channel.parse({"id": "1.1", "channelvars": {"N": 5, "EMPTY": ""}})

    assert channel.channelvars == {"N": "5", "EMPTY": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-25T14:31:37.123+0000", datetime(2026, 11, 25, 14, 31, 37, 123000, tzinfo=UTC)),
        (
            "2026-11-25T23:31:37.123+0900",
            datetime(2026, 11, 25, 23, 31, 37, 123000, tzinfo=timezone(timedelta(hours=9))),
        ),
        ("2026-11-25T14:31:37+00:00", datetime(2026, 11, 25, 14, 31, 37, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1764081097, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_ari_timestamp_in_korea_is_the_same_instant_as_utc() -> None:
    seoul = parse_time("2026-11-25T23:31:37.123+0900")

    assert seoul == parse_time("2026-11-25T14:31:37.123+0000")


@pytest.mark.parametrize("value", [None, "StasisStart", [], 42, {"channel": {}}, {"type": 7}])
def test_event_parse_rejects_non_events(value: object) -> None:
    with pytest.raises(AriParseError, match="not an ARI event"):
        AriEvent.parse(value)


@pytest.mark.parametrize("value", [None, "1.1", [], {"name": "PJSIP/1001-1"}, {"id": 11}])
def test_channel_parse_rejects_non_channels(value: object) -> None:
    with pytest.raises(AriParseError, match="not a channel"):
        Channel.parse(value)


def test_event_with_a_broken_channel_is_a_parse_error() -> None:
    data = raw("channel_destroyed")
    data["channel"] = {"name": "PJSIP/1001-00000004"}

    with pytest.raises(AriParseError):
        AriEvent.parse(data)


def test_parse_error_message_is_bounded() -> None:
    with pytest.raises(AriParseError) as info:
        AriEvent.parse(["x" * 10_000])

    assert len(str(info.value)) < 300


def test_channel_with_a_non_mapping_caller_is_a_parse_error() -> None:
    data = copy.deepcopy(raw("channel_destroyed"))
    data["channel"]["caller"] = "1001"

    with pytest.raises(AriParseError):
        AriEvent.parse(data)
