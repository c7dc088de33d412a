"""The PBX's extension directory, read from ``asterisk/extensions.yaml``.

One source for the PJSIP endpoints and dialplan that ``stack`` renders, for the ARI app (who owns the
called extension, which greeting and language to use) and for the web console. Pure: no I/O beyond
reading the file, no Django.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

EXTENSION_RE = re.compile(r"^[1-9][0-9]{1,5}$")
LANGUAGES = ("en-US", "ko-KR")
DEFAULT_GREETING = "Hello, this is the AI assistant of {owner}. This call is recorded. How can I help you?"
#: What happens to an extension's calls: ``learn`` records and transcribes them and its owner's AI
#: learns from what the owner says; ``record`` records and transcribes only; ``off`` keeps no audio
#: and learns nothing (the AI still answers missed calls).
RECORDING_MODES = ("learn", "record", "off")
#: Played to the caller before a recorded phone-to-phone call is connected (§10.2: callers are told).
DEFAULT_NOTICE = {
    "en-US": "This call may be recorded and transcribed.",
    "ko-KR": "이 통화는 녹음되며 내용이 기록될 수 있습니다.",
}


def notice_sound(language: str) -> str:
    """The sound file name (no extension) of the recording notice in ``language``.

    The ARI app writes ``<sounds dir>/<name>.wav`` at start-up; the dialplan plays it.
    """
    return f"recording-notice-{language}"


class DirectoryError(ValueError):
    """The extensions file is missing or invalid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Extension:
    ext: str
    owner: str
    no_answer_timeout: int
    language: str
    greeting: str
    recording: str = "learn"
    #: Networks this extension may use (REGISTER, calls); empty: any address (the password is the guard).
    permit: tuple[str, ...] = ()
    #: Encrypted media (SRTP with SDES keys, which travel in the SDP: only safe over the TLS transport).
    srtp: bool = False
    #: Whether the AI answers the calls nobody picks up (False: the caller hears ringing, then a hang-up).
    ai: bool = True
    #: The TTS voice name of the language's provider ("" = the language's default voice).
    voice: str = ""
    #: What the AI says when it puts a caller on hold for a person, and between hold music ("" = default).
    hold_message: str = ""
    update_message: str = ""
    #: Hold music: a WAV file name in the hold music directory ("" = the built-in tune), and its volume (%).
    hold_music: str = ""
    hold_music_volume: int = 100
    #: Only for extensions made in the console: the SIP password the ARI app provisions them with over ARI
    #: (extensions of the YAML file are rendered into pjsip.conf with the passwords of ``.env``).
    sip_password: str = ""
    #: What callers call the business or desk behind this line ("Smile Tree Dental Clinic"): the AI does
    #: not take it for something a caller asks about ("Is Smile Tree open on Saturdays?" asks about
    #: Saturdays). "" = none.
    business: str = ""

    @property
    def greeting_text(self) -> str:
        """The greeting as spoken: ``{owner}`` and ``{business}`` (the owner when there is none) replaced."""
        return self.greeting.replace("{owner}", self.owner).replace("{business}", self.business or self.owner)

    @property
    def recorded(self) -> bool:
        return self.recording != "off"

    @property
    def learns(self) -> bool:
        return self.recording == "learn"


@dataclass(frozen=True, slots=True)
class Directory:
    extensions: tuple[Extension, ...]
    #: The recording notice per language; an empty text means no notice in that language.
    notice: tuple[tuple[str, str], ...] = tuple(DEFAULT_NOTICE.items())

    def notice_text(self, language: str) -> str:
        return dict(self.notice).get(language, "")

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages of the extensions, in order of first use."""
        return tuple(dict.fromkeys(ext.language for ext in self.extensions))

    def get(self, ext: str) -> Extension | None:
        for item in self.extensions:
            if item.ext == ext:
                return item
        return None

    def __iter__(self):
        return iter(self.extensions)

    def as_document(self) -> dict:
        """The directory as the document :func:`parse_directory` reads (the YAML's shape, every field
        explicit): what the console publishes (``contract.directory``) and the ARI app caches."""
        return {
            "recording_notice": dict(self.notice) or False,
            "extensions": [
                {
                    "ext": e.ext,
                    "owner": e.owner,
                    "no_answer_timeout": e.no_answer_timeout,
                    "language": e.language,
                    "greeting": e.greeting,
                    "recording": e.recording,
                    **({"permit": list(e.permit)} if e.permit else {}),
                    "srtp": e.srtp,
                    "ai": e.ai,
                    "voice": e.voice,
                    "hold_message": e.hold_message,
                    "update_message": e.update_message,
                    "hold_music": e.hold_music,
                    "hold_music_volume": e.hold_music_volume,
                    **({"sip_password": e.sip_password} if e.sip_password else {}),
                    "business": e.business,
                }
                for e in self.extensions
            ],
        }

    def __len__(self) -> int:
        return len(self.extensions)


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 600:
        raise DirectoryError(f"{where}: no_answer_timeout must be an integer number of seconds in 1..600")
    return value


def parse_directory(data: object, source: str = "extensions.yaml") -> Directory:
    """Validate the parsed YAML document and build a :class:`Directory`."""
    if not isinstance(data, dict):
        raise DirectoryError(f"{source}: expected a mapping with 'defaults' and 'extensions'")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise DirectoryError(f"{source}: 'defaults' must be a mapping")
    items = data.get("extensions")
    if not isinstance(items, list) or not items:
        raise DirectoryError(f"{source}: 'extensions' must be a non-empty list")
    seen: set[str] = set()
    result = []
    for index, raw in enumerate(items):
        where = f"{source}: extensions[{index}]"
        if not isinstance(raw, dict):
            raise DirectoryError(f"{where}: expected a mapping")
        ext = str(raw.get("ext", "")).strip()
        if not EXTENSION_RE.match(ext):
            raise DirectoryError(f"{where}: ext {ext!r} must be 2-6 digits not starting with 0")
        if ext in seen:
            raise DirectoryError(f"{where}: duplicate extension {ext}")
        seen.add(ext)
        owner = str(raw.get("owner") or "").strip()
        if not owner:
            raise DirectoryError(f"{where}: owner is required")
        timeout = _positive_int(raw.get("no_answer_timeout", defaults.get("no_answer_timeout", 10)), where)
        language = str(raw.get("language", defaults.get("language", "en-US")))
        if language not in LANGUAGES:
            raise DirectoryError(f"{where}: language {language!r} must be one of {', '.join(LANGUAGES)}")
        greeting = str(raw.get("greeting") or defaults.get("greeting") or DEFAULT_GREETING).strip()
        recording = str(raw.get("recording", defaults.get("recording", "learn")))
        if recording not in RECORDING_MODES:
            raise DirectoryError(f"{where}: recording {recording!r} must be one of {', '.join(RECORDING_MODES)}")
        permit = _networks(raw.get("permit", defaults.get("permit")), where)
        srtp = raw.get("srtp", defaults.get("srtp", False))
        if not isinstance(srtp, bool):
            raise DirectoryError(f"{where}: srtp must be true or false")
        # a company's PBX usually has one business name (defaults); an extension's own, even "", wins
        business = (
            _text(raw, "business", where, BUSINESS_LIMIT)
            if "business" in raw
            else _text(defaults, "business", f"{source}: defaults", BUSINESS_LIMIT)
        )
        result.append(
            Extension(
                ext,
                owner,
                timeout,
                language,
                greeting,
                recording,
                permit,
                srtp,
                **_settings(raw, where),
                business=business,
            )
        )
    return Directory(tuple(result), _notice(data.get("recording_notice", DEFAULT_NOTICE), source))


HOLD_MUSIC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.wav$")
VOICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SIP_PASSWORD_RE = re.compile(r"^[A-Za-z0-9_-]{12,64}$")
#: The longest business name (``calls.Extension.business`` holds as many characters).
BUSINESS_LIMIT = 128


def _text(raw: dict, key: str, where: str, limit: int = 500) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise DirectoryError(f"{where}: {key} must be a text of at most {limit} characters")
    return value.strip()


def _settings(raw: dict, where: str) -> dict:
    """The settings the console edits (all optional in the YAML seed): AI, voice, hold messages and music."""
    ai = raw.get("ai", True)
    if not isinstance(ai, bool):
        raise DirectoryError(f"{where}: ai must be true or false")
    voice = _text(raw, "voice", where, 64)
    if voice and not VOICE_RE.match(voice):
        raise DirectoryError(f"{where}: voice {voice!r} must be a voice name (letters, digits, . _ -)")
    music = _text(raw, "hold_music", where, 104)
    if music and not HOLD_MUSIC_RE.match(music):
        raise DirectoryError(f"{where}: hold_music {music!r} must be a .wav file name (no directories)")
    volume = raw.get("hold_music_volume", 100)
    if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
        raise DirectoryError(f"{where}: hold_music_volume must be an integer percentage in 0..100")
    password = _text(raw, "sip_password", where, 64)
    if password and not SIP_PASSWORD_RE.match(password):
        raise DirectoryError(f"{where}: sip_password must be 12-64 letters, digits, '-' or '_'")
    return {
        "ai": ai,
        "voice": voice,
        "hold_message": _text(raw, "hold_message", where),
        "update_message": _text(raw, "update_message", where),
        "hold_music": music,
        "hold_music_volume": volume,
        "sip_password": password,
    }


def _networks(raw: object, where: str) -> tuple[str, ...]:
    """``permit``: a list of addresses or networks (``192.168.1.0/24``, ``2001:db8::/32``, ``203.0.113.7``)."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise DirectoryError(f"{where}: permit must be a non-empty list of networks (e.g. 192.168.1.0/24)")
    networks = []
    for item in raw:
        try:
            networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise DirectoryError(f"{where}: permit entry {item!r} is not an address or network") from None
    return tuple(networks)


def _notice(raw: object, source: str) -> tuple[tuple[str, str], ...]:
    """``recording_notice``: a mapping language -> text (``false`` or ``{}``: no notice at all)."""
    if raw is False or raw is None:
        return ()
    if not isinstance(raw, dict):
        raise DirectoryError(f"{source}: recording_notice must map languages to texts (or be false)")
    notice = []
    for language, text in raw.items():
        if language not in LANGUAGES:
            raise DirectoryError(
                f"{source}: recording_notice language {language!r} must be one of {', '.join(LANGUAGES)}"
            )
        if not isinstance(text, str):
            raise DirectoryError(f"{source}: recording_notice[{language}] must be a text")
        notice.append((language, text.strip()))
    return tuple(notice)


def load_directory(path: Path) -> Directory:
    """Read and validate the extensions file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(f"cannot read the extensions file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DirectoryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{path}: not valid YAML: {exc}") from exc
    return parse_directory(data, str(path))


def dialplan_global(ext: Extension, directory: Directory, ring_override: int | None = None) -> tuple[str, str]:
    """The Asterisk global the dialplan reads for ``ext``: ``AIPBX_EXT_<ext>`` =
    ``<ring seconds>/<recording mode>/<notice sound or empty>/<1: the AI answers, 0: it does not>``.

    Rendered into ``[globals]`` from the seed, and set over ARI (``PUT /asterisk/variable``) by the ARI
    app whenever the directory changes: the next call reads the new value, nothing reloads.
    """
    notice = notice_sound(ext.language) if ext.recorded and directory.notice_text(ext.language) else ""
    seconds = ring_override or ext.no_answer_timeout
    return f"AIPBX_EXT_{ext.ext}", f"{seconds}/{ext.recording}/{notice}/{1 if ext.ai else 0}"
