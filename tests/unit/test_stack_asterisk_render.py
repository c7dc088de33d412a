"""Tests for stack.asterisk.render: the Asterisk configuration generated from the extension directory."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from aipbx.directory import parse_directory
from stack import asterisk
from stack.asterisk import AsteriskError, render
from stack.config import StackConfig
from stack.instance import scratch_config

EXTS = ("1001", "1002", "1003", "1004")


def config(base: Path, ring_seconds: int | None) -> StackConfig:
    cfg = scratch_config("t1", base, ring_seconds=ring_seconds)
    cfg.chroot = base / "chroot"  # no codec_opus here: a fixed codec list
    return cfg


def rendered(base: Path, ring_seconds: int | None = 2) -> tuple[StackConfig, dict[str, str]]:
    cfg = config(base, ring_seconds)
    files = render(cfg, base / "etc")
    return cfg, {path.name: path.read_text(encoding="utf-8") for path in files}


def sections(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(name, template, options) for each ``[name](template)`` section of an Asterisk .conf file."""
    result: list[tuple[str, str, dict[str, str]]] = []
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        header = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if header:
            result.append((header.group(1), header.group(2) or "", {}))
        elif result and (option := re.fullmatch(r"([^=]+?)\s*=>?\s*(.*)", line)):
            result[-1][2][option.group(1)] = option.group(2)
    return result


def test_every_template_is_rendered_with_no_placeholder_left(tmp_path: Path) -> None:
    _, files = rendered(tmp_path)

    templates = {p.name for p in asterisk.TEMPLATES.glob("*.conf")}
    assert set(files) == templates
    assert {"pjsip.conf", "extensions.conf", "ari.conf", "http.conf", "rtp.conf", "asterisk.conf"} <= templates
    for name, text in files.items():
        assert "@@" not in text, name


def test_files_are_not_world_readable(tmp_path: Path) -> None:
    render(config(tmp_path, 2), tmp_path / "etc")

    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "etc").iterdir()}
    assert set(modes.values()) == {0o640}


def test_pjsip_has_one_endpoint_auth_and_aor_per_extension(tmp_path: Path) -> None:
    cfg, files = rendered(tmp_path)

    found = sections(files["pjsip.conf"])

    for ext in EXTS:
        [endpoint] = [opts for name, tpl, opts in found if name == ext and tpl == "phone-endpoint"]
        [auth] = [opts for name, tpl, opts in found if name == f"{ext}-auth"]
        [aor] = [tpl for name, tpl, opts in found if name == ext and tpl == "phone-aor"]
        assert (endpoint["auth"], endpoint["aors"]) == (f"{ext}-auth", ext)
        assert auth["username"] == ext
        assert auth["password"] == cfg.secrets[f"AIPBX_SIP_PASSWORD_{ext}"]
        assert len(auth["password"]) >= 16
        assert aor == "phone-aor"
    assert 'callerid = "Front Desk" <1003>' in files["pjsip.conf"]
    endpoints = [name for name, tpl, _ in found if tpl == "phone-endpoint"]
    assert sorted(endpoints) == list(EXTS)


def test_sip_passwords_differ_between_extensions(tmp_path: Path) -> None:
    cfg, _ = rendered(tmp_path)

    assert len({cfg.sip_password(ext) for ext in EXTS}) == len(EXTS)


def test_no_endpoint_can_be_used_without_authentication(tmp_path: Path) -> None:
    _, files = rendered(tmp_path)
    found = sections(files["pjsip.conf"])
    templates = {name: opts for name, tpl, opts in found if tpl == "!"}

    endpoints = [
        (name, opts)
        for name, tpl, opts in found
        if tpl != "!" and {**templates.get(tpl, {}), **opts}.get("type") == "endpoint"
    ]

    assert len(endpoints) == len(EXTS)
    for name, opts in endpoints:
        assert opts.get("auth"), f"endpoint {name} has no auth"
    assert "anonymous" not in [name for name, _, _ in found]


def test_sip_transport_binds_the_configured_address(tmp_path: Path) -> None:
    cfg, files = rendered(tmp_path)

    transport = {name: opts for name, _, opts in sections(files["pjsip.conf"])}["transport-udp"]

    assert transport["bind"] == f"127.0.0.1:{cfg.sip_port}"
    assert transport["protocol"] == "udp"


def test_codec_list_includes_opus_only_when_the_module_is_installed(tmp_path: Path) -> None:
    cfg = config(tmp_path, 2)
    allow = re.compile(r"^allow = (.+)$", re.M)
    render(cfg, tmp_path / "etc")
    assert allow.search((tmp_path / "etc" / "pjsip.conf").read_text()).group(1) == "ulaw,alaw"

    opus = cfg.chroot / "usr/lib/x86_64-linux-gnu/asterisk/modules/codec_opus_open_source.so"
    opus.parent.mkdir(parents=True)
    opus.touch()
    render(cfg, tmp_path / "etc")

    assert allow.search((tmp_path / "etc" / "pjsip.conf").read_text()).group(1) == "ulaw,alaw,opus"


def test_quotes_in_an_owner_name_do_not_break_the_caller_id(tmp_path: Path) -> None:
    cfg = config(tmp_path, 2)
    cfg.directory = parse_directory({"extensions": [{"ext": "1001", "owner": 'Bob "The Builder"'}]})

    render(cfg, tmp_path / "etc")

    assert 'callerid = "Bob The Builder" <1001>' in (tmp_path / "etc" / "pjsip.conf").read_text()


def test_http_listens_on_loopback_only(tmp_path: Path) -> None:
    cfg, files = rendered(tmp_path)

    [(name, _, general)] = sections(files["http.conf"])

    assert name == "general"
    assert general["bindaddr"] == "127.0.0.1"
    assert general["bindport"] == str(cfg.http_port)
    assert general["enabled"] == "yes"


def test_ari_user_has_the_random_password(tmp_path: Path) -> None:
    cfg, files = rendered(tmp_path)

    users = {name: opts for name, _, opts in sections(files["ari.conf"]) if opts.get("type") == "user"}

    assert list(users) == ["aipbx"]
    password = users["aipbx"]["password"]
    assert password == cfg.secrets["AIPBX_ARI_PASSWORD"]
    assert password not in ("asterisk", "secret", "aipbx", "")
    assert len(password) >= 16
    assert users["aipbx"]["password_format"] == "plain"


def test_manager_interface_is_off(tmp_path: Path) -> None:
    _, files = rendered(tmp_path)

    assert sections(files["manager.conf"])[0][2]["enabled"] == "no"


def test_rtp_is_strict_and_uses_the_standard_port_range(tmp_path: Path) -> None:
    _, files = rendered(tmp_path)

    general = sections(files["rtp.conf"])[0][2]

    assert general["strictrtp"] == "yes"
    assert (general["rtpstart"], general["rtpend"]) == ("10000", "20000")


def extension_globals(extensions_conf: str) -> dict[str, list[str]]:
    """``AIPBX_EXT_<ext> = <seconds>/<mode>/<notice>/<ai>`` of the seed, split."""
    return {ext: value.split("/") for ext, value in re.findall(r"^AIPBX_EXT_(\d+) = (\S+)$", extensions_conf, re.M)}


def ring_seconds_by_extension(extensions_conf: str) -> dict[str, int]:
    return {ext: int(fields[0]) for ext, fields in extension_globals(extensions_conf).items()}


def test_dialplan_rings_each_extension_for_its_own_timeout(tmp_path: Path) -> None:
    _, files = rendered(tmp_path, ring_seconds=None)

    dialplan = files["extensions.conf"]

    assert ring_seconds_by_extension(dialplan) == {"1001": 10, "1002": 10, "1003": 15, "1004": 10}
    # one pattern reads them: an extension's settings change without a dialplan reload
    assert "Set(AIPBX_EXT=${GLOBAL(AIPBX_EXT_${EXTEN})})" in dialplan
    assert "Gosub(aipbx-call,s,1(${EXTEN},${CUT(AIPBX_EXT,/,1)}," in dialplan


def test_recorded_extensions_play_the_notice_in_their_language_and_unrecorded_ones_skip_it(tmp_path: Path) -> None:
    # given 1001 records in English, 1002 in Korean, 1003 records nothing; no English notice text
    cfg = config(tmp_path, 2)
    cfg.directory = parse_directory(
        {
            "recording_notice": {"en-US": "", "ko-KR": "이 통화는 녹음됩니다."},
            "extensions": [
                {"ext": "1001", "owner": "A"},
                {"ext": "1002", "owner": "B", "language": "ko-KR"},
                {"ext": "1003", "owner": "C", "recording": "off", "language": "ko-KR"},
            ],
        }
    )
    # when
    plan = {path.name: path.read_text() for path in render(cfg, tmp_path / "etc")}["extensions.conf"]
    # then each extension passes its mode and the notice to play (none in English: its text is empty)
    calls = {ext: ",".join(fields[1:3]) for ext, fields in extension_globals(plan).items()}
    assert calls == {"1001": "learn,", "1002": "learn,recording-notice-ko-KR", "1003": "off,"}
    # and an unrecorded call is dialled without MixMonitor, a recorded one with it after the notice
    body = plan.split("[aipbx-call]", 1)[1].split("[aipbx-record]", 1)[0]
    assert "Playback(${AIPBX_SOUNDS}/${ARG4},noanswer)" in body and "Progress()" in body
    assert '"${DEVICE_STATE(PJSIP/${ARG1})}" = "UNAVAILABLE"' in body  # unregistered: the AI answers at once
    assert "(unrecorded),Dial(PJSIP/${ARG1},${ARG2})" in body
    assert body.index("Playback(") < body.index("U(aipbx-record")
    assert f"AIPBX_SOUNDS = {cfg.sounds_for_asterisk}" in plan


def test_a_call_over_an_ai_cap_hears_the_busy_message_of_its_language_then_486(tmp_path: Path) -> None:
    from aipbx.directory import LANGUAGES
    from ariapp.calls.limits import busy_exten, busy_sound

    _, files = rendered(tmp_path)
    busy = files["extensions.conf"].split("[aipbx-busy]", 1)[1]
    # the ARI app continues a refused call at <context>,<busy_exten(language)>,1
    for language in LANGUAGES:
        lines = busy.split(f"exten => {busy_exten(language)},1,", 1)[1].splitlines()[:3]
        assert lines == [
            "Progress()",
            f" same => n,Playback(${{AIPBX_SOUNDS}}/{busy_sound(language)},noanswer)",
            " same => n,Hangup(17)",
        ]  # early media (never answered), then busy


def test_no_answer_override_replaces_every_timeout(tmp_path: Path) -> None:
    _, files = rendered(tmp_path, ring_seconds=2)

    assert ring_seconds_by_extension(files["extensions.conf"]) == dict.fromkeys(EXTS, 2)


def test_dialplan_caps_call_length_and_handles_a_missing_ari_app(tmp_path: Path) -> None:
    cfg, files = rendered(tmp_path)
    dialplan = files["extensions.conf"]

    assert f"AIPBX_MAX_CALL = {cfg.max_call_seconds}" in dialplan
    assert "Set(TIMEOUT(absolute)=${AIPBX_MAX_CALL})" in dialplan
    assert f"AIPBX_APP = {cfg.ari_app}" in dialplan
    assert 'GotoIf($["${STASISSTATUS}" = "FAILED"]?fallback)' in dialplan
    fallback = dialplan[dialplan.index("n(fallback)") :]
    assert "Playback(" in fallback.splitlines()[1]
    assert f"AIPBX_RECDIR = {cfg.root_in_chroot}/recordings" in dialplan


def test_asterisk_directories_are_per_instance(tmp_path: Path) -> None:
    cfg, files = rendered(tmp_path)

    dirs = sections(files["asterisk.conf"])[0][2]

    for key in ("astetcdir", "astdbdir", "astspooldir", "astrundir", "astlogdir"):
        assert dirs[key].startswith("/srv/aipbx/t1/"), key
    assert cfg.root_in_chroot == "/srv/aipbx/t1"


def test_unknown_placeholder_is_an_error_naming_the_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "broken.conf").write_text("[general]\nvalue = @@NOT_A_KEY@@\n")
    monkeypatch.setattr(asterisk, "TEMPLATES", templates)

    with pytest.raises(AsteriskError, match=r"template broken.conf: no value for @@NOT_A_KEY@@"):
        render(config(tmp_path, 2), tmp_path / "etc")
