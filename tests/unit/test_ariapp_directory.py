"""Tests for aipbx.directory: the extensions file every part of the PBX is built from."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from aipbx.directory import DirectoryError, load_directory, parse_directory

REPO = Path(__file__).resolve().parents[2]

VALID = {
    "defaults": {"no_answer_timeout": 12, "language": "en-US", "greeting": "Hi, {owner} is away."},
    "extensions": [
        {"ext": "1001", "owner": "Minsu Kim"},
        {
            "ext": "1002",
            "owner": "Jiyoung Lee",
            "no_answer_timeout": 20,
            "language": "ko-KR",
            "greeting": "{owner} 님의 AI 비서입니다.",
        },
    ],
}


def with_extension(**fields: object) -> dict:
    data = copy.deepcopy(VALID)
    data["extensions"][1] = {"ext": "1002", "owner": "Jiyoung Lee", **fields}
    return data


def rejected(data: object) -> str:
    with pytest.raises(DirectoryError) as info:
        parse_directory(data, "ext.yaml")
    return str(info.value)


def test_the_shipped_extensions_file_loads() -> None:
    directory = load_directory(REPO / "asterisk" / "extensions.yaml")

    assert [e.ext for e in directory] == ["1001", "1002", "1003", "1004"]
    assert len(directory) == 4
    front_desk = directory.get("1003")
    assert front_desk is not None
    assert front_desk.owner == "Front Desk"
    assert front_desk.no_answer_timeout == 15
    assert directory.get("1001").no_answer_timeout == 10
    assert all(e.language == "en-US" for e in directory)
    assert directory.get("9999") is None


def test_defaults_apply_and_per_extension_values_win() -> None:
    directory = parse_directory(VALID)

    first, second = directory.extensions
    assert (first.no_answer_timeout, first.language, first.greeting) == (12, "en-US", "Hi, {owner} is away.")
    assert (second.no_answer_timeout, second.language) == (20, "ko-KR")


def test_built_in_defaults_without_a_defaults_section() -> None:
    ext = parse_directory({"extensions": [{"ext": "1001", "owner": "Ann"}]}).get("1001")

    assert ext is not None
    assert (ext.no_answer_timeout, ext.language) == (10, "en-US")
    assert ext.greeting_text == "Hello, this is the AI assistant of Ann. This call is recorded. How can I help you?"
    assert ext.recording == "learn" and ext.recorded and ext.learns


def test_greeting_text_substitutes_every_owner_placeholder() -> None:
    directory = parse_directory(VALID)

    assert directory.get("1001").greeting_text == "Hi, Minsu Kim is away."
    assert directory.get("1002").greeting_text == "Jiyoung Lee 님의 AI 비서입니다."
    shipped = load_directory(REPO / "asterisk" / "extensions.yaml").get("1002")
    assert shipped.greeting_text.count("Jiyoung Lee") == 2
    assert "{owner}" not in shipped.greeting_text


def test_the_business_name_is_the_extensions_own_or_the_defaults() -> None:
    # given a PBX with one business name and a line that names its own (and one that wants none)
    data = copy.deepcopy(VALID)
    data["defaults"]["business"] = " Smile Tree Dental Clinic "
    data["extensions"][1]["business"] = "Smile Tree Lab"
    data["extensions"].append({"ext": "1003", "owner": "Ann", "business": ""})

    # when the file is read
    directory = parse_directory(data)

    # then each extension has its own, or the company's, trimmed; an explicit "" means none
    assert [e.business for e in directory] == ["Smile Tree Dental Clinic", "Smile Tree Lab", ""]
    # and it survives the document the console publishes
    assert parse_directory(directory.as_document()) == directory


def test_without_a_business_name_there_is_none() -> None:
    assert [e.business for e in parse_directory(VALID)] == ["", ""]
    assert all(e.business == "" for e in load_directory(REPO / "asterisk" / "extensions.yaml"))


@pytest.mark.parametrize("business", ["x" * 129, 42, ["Smile Tree"]])
def test_a_business_name_that_is_too_long_or_no_text_is_refused(business: object) -> None:
    message = rejected(with_extension(business=business))

    assert message == "ext.yaml: extensions[1]: business must be a text of at most 128 characters"


def test_a_too_long_default_business_name_names_the_defaults() -> None:
    data = copy.deepcopy(VALID)
    data["defaults"]["business"] = "x" * 129

    assert rejected(data) == "ext.yaml: defaults: business must be a text of at most 128 characters"


def test_a_business_name_of_exactly_the_limit_is_accepted() -> None:
    assert parse_directory(with_extension(business="x" * 128)).get("1002").business == "x" * 128


def test_greeting_text_substitutes_the_business_or_else_the_owner() -> None:
    # given a greeting that names the business
    greeting = "Hello, {business}, {owner}'s line. This call is recorded."

    # when one extension has a business name and the other has none
    directory = parse_directory(
        {
            "defaults": {"greeting": greeting},
            "extensions": [
                {"ext": "1001", "owner": "Front Desk", "business": "Smile Tree Dental Clinic"},
                {"ext": "1002", "owner": "Jiyoung Lee"},
            ],
        }
    )

    # then the business is said, or the owner in its place
    assert directory.get("1001").greeting_text == (
        "Hello, Smile Tree Dental Clinic, Front Desk's line. This call is recorded."
    )
    assert directory.get("1002").greeting_text == "Hello, Jiyoung Lee, Jiyoung Lee's line. This call is recorded."


def test_numeric_ext_in_yaml_is_accepted_as_text() -> None:
    directory = parse_directory({"extensions": [{"ext": 1001, "owner": "Ann"}]})

    assert directory.get("1001") is not None


def test_duplicate_extension_names_the_second_entry() -> None:
    message = rejected(with_extension(ext="1001"))

    assert "ext.yaml: extensions[1]" in message
    assert "duplicate extension 1001" in message


@pytest.mark.parametrize("ext", ["0123", "1", "1234567", "12a4", "", "10 01", True])
def test_bad_extension_number_is_refused(ext: object) -> None:
    data = copy.deepcopy(VALID)
    data["extensions"][1]["ext"] = ext

    message = rejected(data)

    assert "ext.yaml: extensions[1]" in message
    assert "must be 2-6 digits not starting with 0" in message


def test_missing_ext_key_is_refused() -> None:
    message = rejected({"extensions": [{"owner": "Ann"}]})

    assert "extensions[0]" in message and "ext ''" in message


@pytest.mark.parametrize("owner", [None, "", "   "])
def test_missing_or_blank_owner_is_refused(owner: str | None) -> None:
    fields = {} if owner is None else {"owner": owner}
    data = copy.deepcopy(VALID)
    data["extensions"][1] = {"ext": "1002", **fields}

    message = rejected(data)

    assert message == "ext.yaml: extensions[1]: owner is required"


def test_owner_key_without_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "extensions.yaml"
    path.write_text('extensions:\n  - ext: "1001"\n    owner:\n', encoding="utf-8")

    with pytest.raises(DirectoryError, match="owner is required"):
        load_directory(path)


@pytest.mark.parametrize("timeout", [0, 601, -5, True, False, "10", 10.5, None])
def test_bad_no_answer_timeout_is_refused(timeout: object) -> None:
    message = rejected(with_extension(no_answer_timeout=timeout))

    assert message.startswith("ext.yaml: extensions[1]: no_answer_timeout")
    assert "1..600" in message


@pytest.mark.parametrize("timeout", [1, 600])
def test_timeout_bounds_are_inclusive(timeout: int) -> None:
    assert parse_directory(with_extension(no_answer_timeout=timeout)).get("1002").no_answer_timeout == timeout


def test_bad_default_timeout_is_reported_on_the_first_extension_using_it() -> None:
    data = copy.deepcopy(VALID)
    data["defaults"]["no_answer_timeout"] = 0

    assert rejected(data).startswith("ext.yaml: extensions[0]: no_answer_timeout")


@pytest.mark.parametrize("language", ["en", "ko-kr", "fr-FR", ""])
def test_unsupported_language_is_refused(language: str) -> None:
    message = rejected(with_extension(language=language))

    assert f"extensions[1]: language {language!r} must be one of en-US, ko-KR" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, "ext.yaml: expected a mapping with 'defaults' and 'extensions'"),
        (["1001"], "ext.yaml: expected a mapping with 'defaults' and 'extensions'"),
        ({"extensions": {"1001": "Ann"}}, "ext.yaml: 'extensions' must be a non-empty list"),
        ({"extensions": []}, "ext.yaml: 'extensions' must be a non-empty list"),
        ({"defaults": {}}, "ext.yaml: 'extensions' must be a non-empty list"),
        ({"defaults": ["x"], "extensions": [{"ext": "1001", "owner": "A"}]}, "ext.yaml: 'defaults' must be a mapping"),
        ({"extensions": ["1001"]}, "ext.yaml: extensions[0]: expected a mapping"),
    ],
)
def test_wrong_document_shapes_are_refused(data: object, expected: str) -> None:
    assert rejected(data) == expected


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(DirectoryError) as info:
        load_directory(path)

    assert str(info.value) == f"cannot read the extensions file {path}: No such file or directory"


def test_directory_instead_of_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match=f"cannot read the extensions file {tmp_path}"):
        load_directory(tmp_path)


def test_file_that_is_not_utf8_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "extensions.yaml"
    path.write_bytes('extensions:\n  - ext: "1001"\n    owner: "Jos\xe9"\n'.encode("latin-1"))

    with pytest.raises(DirectoryError, match=str(path)):
        load_directory(path)


def test_invalid_yaml_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "extensions.yaml"
    path.write_text('extensions:\n  - ext: "1001\n    owner: [unclosed\n', encoding="utf-8")

    with pytest.raises(DirectoryError) as info:
        load_directory(path)

    assert str(info.value).startswith(f"{path}: not valid YAML:")


def test_validation_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "extensions.yaml"
    path.write_text('extensions:\n  - ext: "1001"\n    owner: A\n  - ext: "1001"\n    owner: B\n', encoding="utf-8")

    with pytest.raises(DirectoryError) as info:
        load_directory(path)

    assert str(info.value) == f"{path}: extensions[1]: duplicate extension 1001"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "extensions.yaml"
    path.write_text("", encoding="utf-8")

    with pytest.raises(DirectoryError, match="expected a mapping"):
        load_directory(path)
