"""Identity of an insured person (参保人身份): ID types, ID number checks, person ids.

Every feed (tax bureau payments, civil-affairs statuses, the household registry, clerk
input) names a person by ID type and ID number. This module

* checks a number against the format of its type and says what is wrong in words a
  clerk can act on (never echoing the full number: 个人信息保护法);
* normalises it, so the same card typed in different ways is the same person;
* derives the aggregate id of the person from the number with a keyed hash
  (:func:`person_id_for`), so the raw number never serves as a key.

Format choices for the types other than the resident ID card (documented here
because no single national standard covers them all):

* ``PASSPORT`` (护照): 6 to 9 letters/digits with at least one digit. Chinese
  passports (E/G/D/S/P + 8 digits, or E + letter + 7 digits since 2017) fit, and so do
  foreign passports, whose document number is at most 9 characters in the ICAO 9303
  machine-readable zone.
* ``HK_MACAU_PERMIT`` (港澳居民来往内地通行证 / 港澳居民居住证): H or M + 8 digits
  (card issued since 2013) or + 10 digits (older booklet, last two digits count the
  renewals); or the 18-character residence permit number, which follows GB 11643 with
  address code 810000 (Hong Kong) or 820000 (Macau).
* ``TAIWAN_PERMIT`` (台湾居民来往大陆通行证 / 台湾居民居住证): 8 digits (card since
  2015) or 10 digits (older booklet); or the 18-character residence permit number,
  GB 11643 with address code 830000.
* ``FOREIGN_PERMANENT_RESIDENT`` (外国人永久居留身份证): the 2004/2017 card, 3
  letters (nationality) + 12 digits; or the card issued since 1 Dec 2023: 18
  characters, first digit 9, check character computed as in GB 11643 (NIA
  machine-readable rules, 2023). The 2023 layout is taken to mirror GB 11643
  (birth date in characters 7-14, sex in character 17); because that layout is not
  confirmed from the primary standard, an unparseable date there yields
  ``birth_date=None`` instead of a rejection.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from operator import mul

from ledger.domain.errors import DomainError


class IdType(StrEnum):
    """Type of identity document (证件类型)."""

    RESIDENT_ID = "RESIDENT_ID"
    """居民身份证, GB 11643-1999 公民身份号码."""
    PASSPORT = "PASSPORT"
    """护照."""
    HK_MACAU_PERMIT = "HK_MACAU_PERMIT"
    """港澳居民来往内地通行证, or 港澳居民居住证."""
    TAIWAN_PERMIT = "TAIWAN_PERMIT"
    """台湾居民来往大陆通行证, or 台湾居民居住证."""
    FOREIGN_PERMANENT_RESIDENT = "FOREIGN_PERMANENT_RESIDENT"
    """外国人永久居留身份证."""


#: Birth dates before this are typing errors. 18-digit numbers exist since 1999, when
#: anyone born earlier would have been over 119; GB 11643's own example number
#: (440524188001010014) is born on this very day, so it stays valid.
EARLIEST_BIRTH_DATE = date(1880, 1, 1)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_ASCII_ZERO_WEIGHT = ord("0") * sum(_WEIGHTS)

# GB/T 2260 province-level prefixes that appear in resident ID address codes.
# 71 (Taiwan), 81 (Hong Kong), 82 (Macau) are not issued resident ID cards; their
# residents hold permits, recorded under the permit types.
_RESIDENT_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65".split()
)
_GB11643_SHAPE = re.compile(r"\d{17}[\dX]")
_PASSPORT = re.compile(r"(?=[A-Z0-9]*\d)[A-Z0-9]{6,9}")
_HK_MACAU_CARD = re.compile(r"[HM](\d{8}|\d{10})")
_TAIWAN_CARD = re.compile(r"\d{8}|\d{10}")
_FOREIGN_OLD = re.compile(r"[A-Z]{3}\d{12}")
_HK_MACAU_RESIDENCE_PREFIXES = ("810000", "820000")
_TAIWAN_RESIDENCE_PREFIX = "830000"


@dataclass(frozen=True)
class PersonIdentity:
    """A checked, normalised identity document of one person (参保人证件)."""

    id_type: IdType
    id_number: str
    birth_date: date | None = None
    sex: str | None = None  # 'M' | 'F' | None when the number does not carry it
    address_code: str | None = None

    @property
    def masked_number(self) -> str:
        return mask_id_number(self.id_number)

    def __repr__(self) -> str:  # keep the clear number out of logs and tracebacks
        return (
            f"PersonIdentity(id_type={self.id_type.value!r}, id_number={self.masked_number!r}, "
            f"birth_date={self.birth_date!r}, sex={self.sex!r}, address_code={self.address_code!r})"
        )


def mask_id_number(value: str) -> str:
    """Mask an ID number for display: keep the first 4 and last 4 characters.

    ``610902199001011234`` → ``6109**********1234``. Numbers of 8 characters or fewer
    are masked completely (4 + 4 would show all of them).
    """
    value = str(value)
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def resident_id_check_char(first17: str) -> str:
    """Check character of a GB 11643 number (ISO 7064 MOD 11-2) from its first 17 digits."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("the check character is computed from exactly 17 digits")
    # ASCII digits are their value + 48: the weighted sum of the bytes, less 48 times the weights' sum (in C).
    total = sum(map(mul, first17.encode("ascii"), _WEIGHTS)) - _ASCII_ZERO_WEIGHT
    return _CHECK_CHARS[total % 11]


def make_resident_id(address_code: str, birth: date, sequence: int) -> str:
    """Build a valid 18-character resident ID number (used by generators and tests).

    ``sequence`` is the 3-digit order number (顺序码): odd for men, even for women.
    """
    if len(address_code) != 6 or not address_code.isdigit():
        raise ValueError(f"address code must be 6 digits, got {address_code!r}")
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be 0-999, got {sequence}")
    first17 = f"{address_code}{birth:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_char(first17)


def normalize_id_number(id_number: str) -> str:
    """Normalise typing variants: full-width characters, surrounding spaces, lower-case x.

    Spreadsheets from agencies often carry full-width digits or ``Ｘ`` (NFKC folds them).
    """
    return unicodedata.normalize("NFKC", str(id_number)).strip().upper()


def parse_id_type(id_type: str | IdType) -> IdType:
    """Read an ID type code; raise ``ID_TYPE_UNKNOWN`` for anything else."""
    if isinstance(id_type, IdType):
        return id_type
    text = str(id_type).strip().upper()
    try:
        return IdType(text)
    except ValueError:
        known = ", ".join(t.value for t in IdType)
        raise DomainError(
            "ID_TYPE_UNKNOWN",
            f"ID type {str(id_type)[:40]!r} is not known; use one of {known}",
            id_type=str(id_type)[:40],
        ) from None


def parse_identity(
    id_type: str | IdType, id_number: str, *, today: date | None = None
) -> PersonIdentity:
    """Check and normalise an identity document; derive birth date and sex where the number carries them.

    ``today`` bounds birth dates (a birth date in the future is a typing error); it
    defaults to the current date and is a parameter so that checks are reproducible.
    Raises :class:`DomainError` with code ``ID_TYPE_UNKNOWN``, ``ID_FORMAT``,
    ``ID_CHECKSUM`` or ``ID_BIRTH_DATE``.
    """
    kind = parse_id_type(id_type)
    number = normalize_id_number(id_number)
    today = today or date.today()
    if not number:
        raise DomainError("ID_FORMAT", f"the {_label(kind)} number is empty; enter the number on the card",
                          id_type=kind.value)
    if kind is IdType.RESIDENT_ID:
        return _parse_resident_id(number, today)
    if kind is IdType.PASSPORT:
        if not _PASSPORT.fullmatch(number):
            raise _format_error(kind, number, "6 to 9 letters and digits, e.g. E12345678")
        return PersonIdentity(kind, number)
    if kind is IdType.HK_MACAU_PERMIT:
        if number.startswith(_HK_MACAU_RESIDENCE_PREFIXES) and len(number) == 18:
            return _parse_gb11643(kind, number, today, strict_date=True)
        if not _HK_MACAU_CARD.fullmatch(number):
            raise _format_error(
                kind, number,
                "H or M followed by 8 or 10 digits (e.g. H12345678), or an 18-character "
                "residence permit number starting 810000 or 820000",
            )
        return PersonIdentity(kind, number)
    if kind is IdType.TAIWAN_PERMIT:
        if number.startswith(_TAIWAN_RESIDENCE_PREFIX) and len(number) == 18:
            return _parse_gb11643(kind, number, today, strict_date=True)
        if not _TAIWAN_CARD.fullmatch(number):
            raise _format_error(
                kind, number,
                "8 or 10 digits (e.g. 12345678), or an 18-character residence permit "
                "number starting 830000",
            )
        return PersonIdentity(kind, number)
    # FOREIGN_PERMANENT_RESIDENT
    if _FOREIGN_OLD.fullmatch(number):
        return PersonIdentity(kind, number)
    if len(number) == 18 and number.startswith("9"):
        identity = _parse_gb11643(kind, number, today, strict_date=False)
        # The first six characters are not an address code (9 + province + nationality).
        return PersonIdentity(kind, identity.id_number, identity.birth_date, identity.sex, None)
    raise _format_error(
        kind, number,
        "3 letters and 12 digits (card before 2023, e.g. USA110012345678), or 18 "
        "characters starting with 9 (card since December 2023)",
    )


def _parse_resident_id(number: str, today: date) -> PersonIdentity:
    kind = IdType.RESIDENT_ID
    if len(number) == 15 and number.isdigit():
        raise DomainError(
            "ID_FORMAT",
            f"ID number {mask_id_number(number)} is an old 15-digit number; "
            "enter the 18-character number on the current card",
            id_type=kind.value,
        )
    if not _GB11643_SHAPE.fullmatch(number):
        raise _format_error(kind, number, "18 characters: 17 digits and a final digit or X")
    if number.startswith(("81", "82", "83")):
        raise DomainError(
            "ID_FORMAT",
            f"ID number {mask_id_number(number)} is a Hong Kong, Macau or Taiwan residence "
            "permit number; record it under type HK_MACAU_PERMIT or TAIWAN_PERMIT",
            id_type=kind.value,
        )
    if number.startswith("9"):
        raise DomainError(
            "ID_FORMAT",
            f"ID number {mask_id_number(number)} is a foreigner's permanent residence card "
            "number; record it under type FOREIGN_PERMANENT_RESIDENT",
            id_type=kind.value,
        )
    if number[:2] not in _RESIDENT_PROVINCES:
        raise DomainError(
            "ID_FORMAT",
            f"ID number {mask_id_number(number)} starts with {number[:2]}, which is no "
            "province code; re-check the first digits on the card",
            id_type=kind.value,
        )
    return _parse_gb11643(kind, number, today, strict_date=True)


def _parse_gb11643(kind: IdType, number: str, today: date, *, strict_date: bool) -> PersonIdentity:
    """Check a GB 11643-shaped number (resident ID, residence permits, 2023 foreigner card)."""
    if not _GB11643_SHAPE.fullmatch(number):
        raise _format_error(kind, number, "18 characters: 17 digits and a final digit or X")
    expected = resident_id_check_char(number[:17])
    if number[17] != expected:
        raise DomainError(
            "ID_CHECKSUM",
            f"ID number {mask_id_number(number)} fails the check digit: expected {expected}, "
            f"found {number[17]}; re-check the number on the card",
            id_type=kind.value,
        )
    birth = _birth_date(number[6:14])
    if birth is None or not EARLIEST_BIRTH_DATE <= birth <= today:
        if not strict_date:
            birth = None
        elif birth is None:
            raise DomainError(
                "ID_BIRTH_DATE",
                f"ID number {mask_id_number(number)} contains birth date {number[6:14]}, which "
                "does not exist; re-check digits 7 to 14 on the card",
                id_type=kind.value,
            )
        else:
            when = "in the future" if birth > today else f"before {EARLIEST_BIRTH_DATE.year}"
            raise DomainError(
                "ID_BIRTH_DATE",
                f"ID number {mask_id_number(number)} contains birth date {birth.isoformat()}, "
                f"which is {when}; re-check digits 7 to 14 on the card",
                id_type=kind.value,
            )
    sex = ("M" if int(number[16]) % 2 else "F") if birth is not None else None
    return PersonIdentity(kind, number, birth, sex, number[:6])


def _birth_date(yyyymmdd: str) -> date | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None


def _label(kind: IdType) -> str:
    return {
        IdType.RESIDENT_ID: "resident ID",
        IdType.PASSPORT: "passport",
        IdType.HK_MACAU_PERMIT: "Hong Kong/Macau permit",
        IdType.TAIWAN_PERMIT: "Taiwan permit",
        IdType.FOREIGN_PERMANENT_RESIDENT: "foreigner's permanent residence card",
    }[kind]


def _format_error(kind: IdType, number: str, expected: str) -> DomainError:
    return DomainError(
        "ID_FORMAT",
        f"{_label(kind)} number {mask_id_number(number)} is not in the expected form "
        f"({expected}); re-check the number and the ID type",
        id_type=kind.value,
    )


def person_id_for(identity: PersonIdentity, key: bytes) -> uuid.UUID:
    """Deterministic aggregate id of a person: the same document gives the same UUID in every feed.

    The id is HMAC-SHA256(key, "<id_type>:<normalised number>"), first 16 bytes,
    stamped as an RFC 9562 version-8 UUID (custom layout: version nibble 8 and the
    RFC variant bits 10 overwrite 6 of the 128 hash bits, leaving 122). With a secret
    key, the UUID cannot be turned back into the ID number by hashing every possible
    number, which an unkeyed hash (or UUIDv5) would allow: the number space is small.

    The type is part of the input: a passport and a resident ID of the same human are
    two identities until a clerk links them.

    An empty key is a deployment mistake, not bad input: ``ValueError``.
    """
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise ValueError("person_id_for needs a non-empty secret key (configuration problem)")
    message = f"{identity.id_type.value}:{identity.id_number}".encode("utf-8")
    raw = bytearray(hmac.new(bytes(key), message, hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10 (RFC 4122 / 9562)
    return uuid.UUID(bytes=bytes(raw))


__all__ = [
    "EARLIEST_BIRTH_DATE",
    "IdType",
    "PersonIdentity",
    "make_resident_id",
    "mask_id_number",
    "normalize_id_number",
    "parse_id_type",
    "parse_identity",
    "person_id_for",
    "resident_id_check_char",
]
