"""A security lint of the generated Asterisk configuration.

The configs are rendered exactly as ``make up`` and the integration tests do (``stack.asterisk.render``
with a fresh install's generated secrets), then read with a small parser of Asterisk's config syntax
(``[section](templates)``, ``key = value`` / ``key => value``, ``;`` comments, ``(!)`` templates whose
options are inherited). Each test is one hardening rule; the rules also run on the container layout.

Model output never reaches a dial string: see also ``test_prompt_injection.py`` for the ARI side
(no originate/redirect/continue operation exists in the app).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stack.asterisk import DOCKER_LAYOUT, render
from stack.config import StackConfig
from stack.instance import scratch_config

DEFAULT_PASSWORDS = {
    "",
    "1234",
    "12345",
    "123456",
    "1111",
    "0000",
    "password",
    "secret",
    "asterisk",
    "admin",
    "pass",
    "changeme",
    "test",
    "sip",
    "pjsip",
    "aipbx",
    "letmein",
    "qwerty",
}
DEFAULT_USERS = {"asterisk", "admin", "ari", "user", "test", "root", "manager", "guest"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class Section:
    name: str
    templates: list[str]
    is_template: bool
    options: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        values = [v for k, v in self.options if k == key]
        return values[-1] if values else default

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.options if k == key]


def parse_conf(text: str) -> list[Section]:
    """Sections of an Asterisk .conf file, each with its own options followed by nothing inherited."""
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\]\s*(?:\(([^)]*)\))?", line)
        if header:
            flags = [f.strip() for f in (header.group(2) or "").split(",") if f.strip()]
            sections.append(Section(header.group(1), [f for f in flags if f != "!"], "!" in flags))
            continue
        option = re.fullmatch(r"([^=]+?)\s*=>?\s*(.*)", line)
        assert option and sections, f"unparsable line outside a section: {raw!r}"
        sections[-1].options.append((option.group(1).strip(), option.group(2).strip()))
    return sections


def resolved(sections: list[Section]) -> dict[str, list[Section]]:
    """Concrete sections by name (a name may repeat: endpoint and AOR), templates' options prepended."""
    templates = {s.name: s for s in sections if s.is_template}
    result: dict[str, list[Section]] = {}
    for section in sections:
        if section.is_template:
            continue
        inherited = [opt for t in section.templates for opt in templates[t].options]
        result.setdefault(section.name, []).append(
            Section(section.name, section.templates, False, inherited + section.options)
        )
    return result


def of_type(conf: dict[str, list[Section]], kind: str) -> dict[str, Section]:
    return {s.name: s for group in conf.values() for s in group if s.get("type") == kind}


@pytest.fixture(params=["instance", "docker"])
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StackConfig, dict[str, str]]:
    cfg = scratch_config("hard", tmp_path)
    cfg.chroot = tmp_path / "chroot"
    layout = DOCKER_LAYOUT if request.param == "docker" else None
    files = render(cfg, tmp_path / "etc", layout)
    return cfg, {p.name: p.read_text(encoding="utf-8") for p in files}


def general(files: dict[str, str], name: str) -> Section:
    [section] = [s for s in parse_conf(files[name]) if s.name == "general"]
    return section


def test_parser_reads_templates_and_inheritance() -> None:
    conf = resolved(parse_conf("[t](!)\ntype = endpoint\nauth = a ; comment\n[x](t)\nauth = b\n[y]\nk => v\n"))

    assert conf["x"][0].get("type") == "endpoint" and conf["x"][0].get("auth") == "b"
    assert conf["y"][0].get("k") == "v" and "t" not in conf


def test_no_anonymous_endpoint_and_the_anonymous_identifier_is_not_loaded(rendered) -> None:
    _, files = rendered
    pjsip = resolved(parse_conf(files["pjsip.conf"]))
    modules = parse_conf(files["modules.conf"])[0]

    assert "anonymous" not in pjsip
    [glob] = of_type(pjsip, "global").values()
    order = [x.strip() for x in glob.get("endpoint_identifier_order", "").split(",")]
    assert "anonymous" not in order
    assert "res_pjsip_endpoint_identifier_anonymous.so" in modules.all("noload")
    # "ip" identification needs identify sections; none exist, so no peer is let in by address alone.
    assert not of_type(pjsip, "identify")


def test_every_endpoint_authenticates_with_its_own_strong_generated_password(rendered) -> None:
    cfg, files = rendered
    pjsip = resolved(parse_conf(files["pjsip.conf"]))
    endpoints, auths = of_type(pjsip, "endpoint"), of_type(pjsip, "auth")

    assert sorted(endpoints) == sorted(ext.ext for ext in cfg.directory)
    passwords = []
    for name, endpoint in endpoints.items():
        auth = auths.get(endpoint.get("auth", ""))
        assert auth is not None, f"endpoint {name}: auth= names no auth section"
        assert auth.get("auth_type") == "userpass"
        password = auth.get("password", "")
        assert password.lower() not in DEFAULT_PASSWORDS | {name, auth.get("username", ""), name * 2}
        assert len(password) >= 16 and not password.isdigit()
        assert password == cfg.sip_password(name)  # from the install's generated secrets
        assert endpoint.get("allow_unauthenticated_options", "no") == "no"
        passwords.append(password)
    assert len(set(passwords)) == len(passwords), "two extensions share a password"


def test_credentials_are_generated_per_install(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = scratch_config("a", tmp_path / "a"), scratch_config("b", tmp_path / "b")

    assert first.ari_password != second.ari_password
    for ext in first.directory:
        assert first.sip_password(ext.ext) != second.sip_password(ext.ext)


def test_unknown_peers_are_always_challenged_and_reported(rendered) -> None:
    # PJSIP has no alwaysauthreject/allowguest switch: unknown peers meet the artificial endpoint (401
    # whatever the user name) unless an anonymous endpoint or identifier exists (checked above). The
    # unidentified-request counters turn scanning into security events.
    _, files = rendered
    [glob] = of_type(resolved(parse_conf(files["pjsip.conf"])), "global").values()

    assert int(glob.get("unidentified_request_count", "0")) > 0
    assert int(glob.get("unidentified_request_period", "0")) > 0
    modules = parse_conf(files["modules.conf"])[0]
    for legacy in ("chan_iax2.so", "chan_skinny.so", "chan_mgcp.so", "chan_unistim.so"):
        assert legacy in modules.all("noload"), legacy  # channel drivers with their own guest rules


def test_sip_transports_bind_the_configured_address_only(rendered) -> None:
    cfg, files = rendered
    transports = of_type(resolved(parse_conf(files["pjsip.conf"])), "transport")

    assert transports and all(t.get("bind") == f"{cfg.sip_bind}:{cfg.sip_port}" for t in transports.values())


def test_http_and_ari_are_on_loopback_or_tls(rendered) -> None:
    _, files = rendered
    http = general(files, "http.conf")

    assert http.get("bindaddr") in LOOPBACK or http.get("tlsenable") == "yes"
    assert http.get("enablestatic", "no") == "no"
    if http.get("tlsenable") == "yes":
        assert http.get("tlsbindaddr", "").split(":")[0] in LOOPBACK


def test_ari_user_is_not_a_default_and_its_password_is_generated(rendered) -> None:
    cfg, files = rendered
    ari = resolved(parse_conf(files["ari.conf"]))
    users = {name: group[0] for name, group in ari.items() if group[0].get("type") == "user"}

    assert ari["general"][0].get("allowed_origins", "") in ("", None)  # no cross-origin browser access
    assert list(users) == [cfg.ari_user]
    assert cfg.ari_user not in DEFAULT_USERS
    [user] = users.values()
    assert user.get("password") == cfg.ari_password
    assert user.get("password", "").lower() not in DEFAULT_PASSWORDS and len(user.get("password", "")) >= 16


def test_rtp_is_strict(rendered) -> None:
    _, files = rendered

    assert general(files, "rtp.conf").get("strictrtp") == "yes"


def test_ami_is_off_or_loopback_only(rendered) -> None:
    _, files = rendered
    manager = general(files, "manager.conf")

    assert manager.get("enabled") == "no" or manager.get("bindaddr") in LOOPBACK
    assert manager.get("bindaddr", "127.0.0.1") in LOOPBACK  # even when someone turns it on


def test_no_dangerous_functions_from_outside_the_dialplan(rendered) -> None:
    _, files = rendered
    [options] = [s for s in parse_conf(files["asterisk.conf"]) if s.name == "options"]

    assert options.get("live_dangerously", "no") == "no"


# --- the dialplan: dial targets come from the extensions file, never from a variable -------------------
SAFE_VARIABLES = {
    "EXTEN",
    "ARG1",
    "ARG2",
    "ARG3",
    "ARG4",
    "ARG5",
    "UNIQUEID",
    "DIALSTATUS",
    "STASISSTATUS",
    "AIPBX_CALL_ID",
    "AIPBX_APP",
    "AIPBX_RECDIR",
    "AIPBX_SOUNDS",
    "AIPBX_MAX_CALL",
    "DEVICE_STATE",
    # the extension's settings: read from its global (GLOBAL(): a channel variable cannot shadow it) into
    # AIPBX_EXT, which from-internal sets itself before reading it
    "AIPBX_EXT",
    "GLOBAL",
    "CUT",
    "REGEX",
    "IF",
}


def dialplan(files: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    return {s.name: s.options for s in parse_conf(files["extensions.conf"])}


def test_dial_targets_are_only_the_extension_matched_from_the_extensions_file(rendered) -> None:
    cfg, files = rendered
    plan = dialplan(files)
    numbers = {ext.ext for ext in cfg.directory}

    dials = [(ctx, v) for ctx, opts in plan.items() for _, v in opts if re.search(r"\bDial\(", v, re.I)]
    assert dials, "the lint found no Dial() to check"
    for ctx, line in dials:
        target = re.search(r"\bDial\(([^,)]*)", line, re.I).group(1)
        assert target in ("PJSIP/${ARG1}", "PJSIP/${EXTEN}") or target in {f"PJSIP/{n}" for n in numbers}, line
        assert ctx == "aipbx-call"
    # ARG1 of aipbx-call is ${EXTEN} only after it matched a directory number's shape and that number's
    # own global (set from the directory only) exists: nothing else reaches Dial().
    calls = [(k, v) for k, v in plan["from-internal"] if "Gosub(aipbx-call" in v]
    assert len(calls) == 1
    assert re.search(r"Gosub\(aipbx-call,s,1\(\$\{EXTEN\},", calls[0][1])
    steps = [v for _, v in plan["from-internal"]]
    shape = next(i for i, v in enumerate(steps) if 'REGEX("^[1-9][0-9]{1,5}$" ${EXTEN})' in v and "noservice" in v)
    lookup = next(i for i, v in enumerate(steps) if "${GLOBAL(AIPBX_EXT_${EXTEN})}" in v)
    missing = next(i for i, v in enumerate(steps) if '"${AIPBX_EXT}" = ""' in v and "noservice" in v)
    gosub = next(i for i, v in enumerate(steps) if "Gosub(aipbx-call" in v)
    assert shape < lookup < missing < gosub
    seeded = dict(re.findall(r"^AIPBX_EXT_(\d+) = (\S+)$", files["extensions.conf"], re.M))
    assert set(seeded) == numbers


def test_the_dialplan_reads_no_variable_an_outsider_could_set(rendered) -> None:
    # ARI/SIP can set channel variables; only Asterisk's own and our globals may steer the dialplan.
    _, files = rendered
    plan = dialplan(files)
    body = "\n".join(v for ctx, opts in plan.items() if ctx != "globals" for _, v in opts)

    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", body))
    assert used <= SAFE_VARIABLES, used - SAFE_VARIABLES
    assert set(re.findall(r"^(\w+)", "\n".join(k for k, _ in plan["globals"]), re.M)) >= {"AIPBX_APP"}
    for dangerous in ("System(", "TrySystem(", "SHELL(", "Originate(", "ChannelRedirect(", "AGI(", "EVAL("):
        assert dangerous.lower() not in body.lower(), dangerous
