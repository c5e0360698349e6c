"""Identity documents: checks, normalisation, masking and the keyed person id."""
from __future__ import annotations

import uuid
from datetime import date

import pytest

from ledger.domain.errors import DomainError
from ledger.domain.identity import (
    IdType,
    PersonIdentity,
    make_resident_id,
    mask_id_number,
    parse_identity,
    person_id_for,
    resident_id_check_char,
)

TODAY = date(2026, 6, 1)
KEY = b"test-key-not-a-secret"


def _error(id_type: str, number: str) -> DomainError:
    with pytest.raises(DomainError) as info:
        parse_identity(id_type, number, today=TODAY)
    return info.value


# --------------------------------------------------------------------------- resident ID


def test_valid_example_with_x_check_char() -> None:
    p = parse_identity("RESIDENT_ID", "11010519491231002X", today=TODAY)
    assert p.id_type is IdType.RESIDENT_ID
    assert p.id_number == "11010519491231002X"
    assert p.birth_date == date(1949, 12, 31)
    assert p.sex == "F"  # sequence 002 is even
    assert p.address_code == "110105"


def test_valid_example_from_gb11643() -> None:
    p = parse_identity("RESIDENT_ID", "440524188001010014", today=TODAY)
    assert p.birth_date == date(1880, 1, 1)
    assert p.sex == "M"  # sequence 001 is odd
    assert p.address_code == "440524"


def test_normalises_lower_case_x_spaces_and_full_width() -> None:
    assert parse_identity("resident_id", " 11010519491231002x ", today=TODAY).id_number == "11010519491231002X"
    full_width = "１１０１０５１９４９１２３１００２Ｘ"
    assert parse_identity(IdType.RESIDENT_ID, full_width, today=TODAY).id_number == "11010519491231002X"


def test_sex_from_sequence() -> None:
    male = make_resident_id("610902", date(1990, 5, 17), 123)
    female = make_resident_id("610902", date(1990, 5, 17), 124)
    assert parse_identity("RESIDENT_ID", male, today=TODAY).sex == "M"
    assert parse_identity("RESIDENT_ID", female, today=TODAY).sex == "F"


def test_make_resident_id_round_trips() -> None:
    number = make_resident_id("610981", date(2001, 2, 28), 7)
    assert len(number) == 18 and number.startswith("61098120010228007")
    p = parse_identity("RESIDENT_ID", number, today=TODAY)
    assert (p.birth_date, p.sex, p.address_code) == (date(2001, 2, 28), "M", "610981")
    assert make_resident_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"


def test_bad_checksum_message_is_masked_and_says_what_to_fix() -> None:
    err = _error("RESIDENT_ID", "110105194912310023")
    assert err.code == "ID_CHECKSUM"
    assert "expected X, found 3" in err.message
    assert "1101**********0023" in err.message
    assert "110105194912310023" not in err.message
    assert "re-check" in err.message


@pytest.mark.parametrize("birth", ["19900230", "19901301", "19900000"])
def test_impossible_birth_date(birth: str) -> None:
    first17 = f"610902{birth}123"
    number = first17 + resident_id_check_char(first17)
    err = _error("RESIDENT_ID", number)
    assert err.code == "ID_BIRTH_DATE"
    assert "does not exist" in err.message
    assert number not in err.message


def test_future_birth_date() -> None:
    number = make_resident_id("610902", date(2030, 1, 1), 11)
    err = _error("RESIDENT_ID", number)
    assert err.code == "ID_BIRTH_DATE" and "future" in err.message


def test_birth_date_before_1880() -> None:
    number = make_resident_id("440524", date(1879, 12, 31), 1)
    err = _error("RESIDENT_ID", number)
    assert err.code == "ID_BIRTH_DATE" and "before 1880" in err.message


@pytest.mark.parametrize(
    "number",
    ["", "12345", "11010519491231002", "1101051949123100XX", "11010519491231002Y", "A10105194912310021"],
)
def test_resident_id_format(number: str) -> None:
    assert _error("RESIDENT_ID", number).code == "ID_FORMAT"


def test_old_15_digit_number_is_refused_with_advice() -> None:
    err = _error("RESIDENT_ID", "110105491231002")
    assert err.code == "ID_FORMAT" and "18-character" in err.message


def test_resident_id_with_unknown_province_or_permit_prefix() -> None:
    first17 = "99010519491231002"
    assert _error("RESIDENT_ID", first17 + resident_id_check_char(first17)).code == "ID_FORMAT"
    permit = make_resident_id("810000", date(1990, 1, 1), 11)
    err = _error("RESIDENT_ID", permit)
    assert err.code == "ID_FORMAT" and "HK_MACAU_PERMIT" in err.message
    first17 = "00010519491231002"
    assert _error("RESIDENT_ID", first17 + resident_id_check_char(first17)).code == "ID_FORMAT"


def test_unknown_id_type() -> None:
    err = _error("DRIVING_LICENCE", "11010519491231002X")
    assert err.code == "ID_TYPE_UNKNOWN"
    assert "RESIDENT_ID" in err.message


# --------------------------------------------------------------------------- other types


@pytest.mark.parametrize(
    ("id_type", "number"),
    [
        ("PASSPORT", "E12345678"),
        ("PASSPORT", "EA1234567"),
        ("PASSPORT", "G12345678"),
        ("PASSPORT", "123456789"),  # e.g. a US passport
        ("PASSPORT", "c01x00t47"),  # lower case is normalised
        ("HK_MACAU_PERMIT", "H12345678"),
        ("HK_MACAU_PERMIT", "M1234567890"),
        ("TAIWAN_PERMIT", "12345678"),
        ("TAIWAN_PERMIT", "1234567890"),
        ("FOREIGN_PERMANENT_RESIDENT", "USA110012345678"),
    ],
)
def test_other_types_valid(id_type: str, number: str) -> None:
    p = parse_identity(id_type, number, today=TODAY)
    assert p.id_type == id_type
    assert p.id_number == number.upper()
    assert p.birth_date is None and p.sex is None


@pytest.mark.parametrize(
    ("id_type", "number"),
    [
        ("PASSPORT", "E1234"),  # too short
        ("PASSPORT", "E1234567890"),  # too long
        ("PASSPORT", "ABCDEFGHI"),  # no digit
        ("PASSPORT", "E1234-678"),
        ("HK_MACAU_PERMIT", "K12345678"),
        ("HK_MACAU_PERMIT", "H1234567"),
        ("HK_MACAU_PERMIT", "H123456789"),  # 9 digits
        ("TAIWAN_PERMIT", "1234567"),
        ("TAIWAN_PERMIT", "T1234567"),
        ("FOREIGN_PERMANENT_RESIDENT", "US110012345678"),
        ("FOREIGN_PERMANENT_RESIDENT", "110105194912310021"),  # 18 chars but not starting 9
    ],
)
def test_other_types_invalid(id_type: str, number: str) -> None:
    err = _error(id_type, number)
    assert err.code == "ID_FORMAT"
    assert "re-check" in err.message


def test_residence_permits_follow_gb11643() -> None:
    hk = parse_identity("HK_MACAU_PERMIT", make_resident_id("810000", date(1985, 7, 1), 21), today=TODAY)
    assert (hk.birth_date, hk.sex, hk.address_code) == (date(1985, 7, 1), "M", "810000")
    tw = parse_identity("TAIWAN_PERMIT", make_resident_id("830000", date(1992, 3, 3), 22), today=TODAY)
    assert tw.sex == "F"
    good = make_resident_id("820000", date(1985, 7, 1), 21)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert _error("HK_MACAU_PERMIT", bad).code == "ID_CHECKSUM"


def test_foreigner_card_2023_form() -> None:
    first17 = "91184019850701123"  # 9 + province + nationality + birth date + sequence
    number = first17 + resident_id_check_char(first17)
    p = parse_identity("FOREIGN_PERMANENT_RESIDENT", number, today=TODAY)
    assert p.birth_date == date(1985, 7, 1) and p.sex == "M" and p.address_code is None
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert _error("FOREIGN_PERMANENT_RESIDENT", wrong).code == "ID_CHECKSUM"


# --------------------------------------------------------------------------- masking


def test_mask_id_number() -> None:
    assert mask_id_number("610902199001011234") == "6109**********1234"
    assert mask_id_number("E12345678") == "E123*5678"
    assert mask_id_number("12345678") == "********"


def test_repr_does_not_leak_the_number() -> None:
    p = parse_identity("RESIDENT_ID", "11010519491231002X", today=TODAY)
    assert "11010519491231002X" not in repr(p)


# --------------------------------------------------------------------------- person id


def test_person_id_is_stable_across_typing_variants() -> None:
    a = parse_identity("RESIDENT_ID", "11010519491231002X", today=TODAY)
    b = parse_identity("resident_id", " 11010519491231002x", today=TODAY)
    assert person_id_for(a, KEY) == person_id_for(b, KEY)


def test_person_id_is_a_version_8_rfc_uuid() -> None:
    pid = person_id_for(parse_identity("RESIDENT_ID", "11010519491231002X", today=TODAY), KEY)
    assert isinstance(pid, uuid.UUID)
    assert pid.version == 8
    assert pid.variant == uuid.RFC_4122


def test_person_id_depends_on_key_and_type() -> None:
    resident = parse_identity("RESIDENT_ID", make_resident_id("610902", date(1990, 1, 1), 11), today=TODAY)
    assert person_id_for(resident, KEY) != person_id_for(resident, b"another-key")
    taiwan = parse_identity("TAIWAN_PERMIT", "12345678", today=TODAY)
    passport = parse_identity("PASSPORT", "12345678A", today=TODAY)
    same_digits = PersonIdentity(IdType.PASSPORT, "12345678")
    assert person_id_for(taiwan, KEY) != person_id_for(same_digits, KEY)
    assert person_id_for(passport, KEY) != person_id_for(taiwan, KEY)


def test_person_id_rejects_empty_key() -> None:
    p = parse_identity("PASSPORT", "E12345678", today=TODAY)
    with pytest.raises(ValueError):
        person_id_for(p, b"")
