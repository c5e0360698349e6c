"""Dead letters (拒收记录): listing the feed records the consumers refused, and putting them back after a fix.

Every refused record is a :class:`~ledger.domain.feed_rejection.FeedRejection` in the
ledger (saved with the consumer's position) and a copy on ``<topic>.dlq``. The ledger's
copy is the one listed here: it is complete, ordered, and there in the embedded setup too.

Re-submitting produces the record's original bytes, unchanged, to the topic it came from
(same key, so same partition and order; headers ``resubmitted-from`` and
``resubmitted-by``), waits for the broker's acknowledgement, then records
``FeedRejection.Resubmitted``. The consumer then takes the copy like any record: applied
if the cause was fixed (a missing policy table, a rule), refused again otherwise (a new
rejection at the copy's position). A crash between the acknowledgement and the note
sends the copy again on the next run; the ledger's idempotency (voucher number + office,
registry record id) makes the second copy a resend. A record already re-submitted is
skipped unless asked ``again``.

**Conflicts from every entrance.** A ``VOUCHER_CONFLICT`` refused over HTTP or on the
command line is kept by the ledger as a rejection of its entrance (``api:tax-voucher``, no
feed position): listed here with the feed-borne ones, same code; it cannot be re-submitted
(``DEAD_LETTER_NOT_ON_FEED``): its sender corrects and resends.

**Scope.** A clerk lists and re-submits only the dead letters of their regions; an
auditor sees all. A letter's region is the record's ``region_code`` (a tax record, an
entrance note), else the region of its grid code, else where the person it names is
enrolled (or was last, or lives); a letter whose region cannot be told (an undecodable
record, an unknown person) is shown to auditors only (:func:`letter_region`).

On ``<topic>.dlq`` the refused record's bytes travel encrypted (:func:`seal`): the value is
the record in the ``aesgcm-v1`` field format of :mod:`events.pii` (deployment key), with the
headers ``enc: aesgcm-v1`` and ``enc.key: <key id, hex>``; the ``error.message`` header has its
ID numbers masked. :func:`open_sealed` gives the original bytes back (a copy without the
``enc`` header is returned as it is). ``dlq list`` / ``dlq resubmit`` read the ledger's copy,
which is encrypted at rest with the event store, and resubmit the original bytes.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from events import codec, pii
from ledger.domain.errors import DomainError
from ledger.domain.feed_rejection import FeedRejection
from ledger.log import get_logger, mask_text
import json

log = get_logger("consumers.dead_letters")
_REJECTED_TOPIC = f"{FeedRejection.__module__}:{FeedRejection.Rejected.__qualname__}"


@dataclass(frozen=True)
class DeadLetter:
    """One refused record as a clerk sees it (ID numbers in the message masked)."""

    id: UUID
    topic: str
    partition: int
    offset: int
    key: str | None
    code: str
    message: str
    received_at: datetime
    size: int
    resubmissions: tuple[dict[str, Any], ...]
    region_code: str | None = None  # None: cannot be told; auditors only

    @property
    def on_feed(self) -> bool:
        """From a Kafka feed (re-submittable), or refused at an entrance without a position (HTTP, CLI)."""
        return self.partition >= 0

    @property
    def source(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}" if self.on_feed else f"{self.topic} {self.key}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "source": self.source, "topic": self.topic, "partition": self.partition,
                "offset": self.offset, "key": self.key, "code": self.code, "message": self.message,
                "received_at": self.received_at.isoformat(), "bytes": self.size, "region_code": self.region_code,
                "on_feed": self.on_feed,
                "resubmitted": [{**r, "at": r["at"].isoformat()} for r in self.resubmissions]}


ENC_HEADER = "enc"
KEY_HEADER = "enc.key"


def seal(value: bytes, headers: Sequence[tuple[str, bytes]], keys: pii.KeyRing,
         ) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A dead letter's value encrypted with ``keys`` (the system's ring) and its headers (``enc``,
    ``enc.key``; the error message masked)."""
    ring = keys
    out = [(k, mask_text(v.decode("utf-8", "replace")).encode() if k == "error.message" else v) for k, v in headers]
    out += [(ENC_HEADER, pii.SCHEME.encode()), (KEY_HEADER, ring.current_id_hex.encode())]
    return ring.encrypt(value), out


def open_sealed(value: bytes, headers: Sequence[tuple[str, Any]], keys: pii.KeyRing) -> bytes:
    """The original record of a dead letter read from ``<topic>.dlq`` (see :func:`seal`), with the
    deployment's ring ``keys`` (``System.keys``)."""
    found = {k: (v.decode() if isinstance(v, (bytes, bytearray)) else v) for k, v in headers}
    if found.get(ENC_HEADER) is None:
        return value
    if found[ENC_HEADER] != pii.SCHEME:
        raise DomainError("DEAD_LETTER_ENCRYPTION_UNKNOWN",
                          f"死信的加密方式 {found[ENC_HEADER]!r} 无法识别 (unknown dead-letter encryption)")
    return keys.decrypt(value)


def _letter(rejection: FeedRejection, ledger: Any = None) -> DeadLetter:
    return DeadLetter(
        id=rejection.id, topic=rejection.topic, partition=rejection.partition, offset=rejection.offset,
        key=rejection.key, code=rejection.code, message=mask_text(rejection.message),
        received_at=rejection.received_at, size=len(rejection.raw),
        resubmissions=tuple(getattr(rejection, "resubmissions", ())),
        region_code=letter_region(ledger, rejection) if ledger is not None else None)


def _person_region(ledger: Any, person_id: UUID) -> str | None:
    """Where the person is enrolled now, else was last, else lives (None: unknown person)."""
    try:
        person = ledger.repository.get(person_id)
    except Exception:  # not registered (the usual reason a feed record was refused)
        return None
    current = person.active_enrollment
    if current is None and person.enrollments:
        current = person.enrollments[-1]
    if current is not None:
        return current.region_code
    return person.household_grid[:6] if person.household_grid else None


def _six_digits(value: Any) -> str | None:
    text = str(value or "").strip()
    return text[:6] if len(text) >= 6 and text[:6].isdigit() else None


def letter_region(ledger: Any, rejection: FeedRejection) -> str | None:
    """The region a dead letter belongs to, for scoping (None: auditors only)."""
    raw = rejection.raw
    if not rejection.on_feed:
        try:
            note = json.loads(raw)
        except ValueError:
            return None
        return _six_digits(note.get("region_code")) or (
            _person_region(ledger, UUID(note["person_id"])) if note.get("person_id") else None)
    try:
        _name, record = codec.decode(raw)
    except Exception:  # undecodable (often why it was refused): no region to tell
        return None
    region = _six_digits(record.get("region_code")) or _six_digits(record.get("grid_code"))
    if region is not None:
        return region
    try:
        person_id = ledger.person_id(str(record.get("id_type") or "RESIDENT_ID"), str(record.get("id_number") or ""))
    except Exception:  # a malformed ID number
        return None
    return _person_region(ledger, person_id)


def visible_to(letter: DeadLetter, who: Any) -> bool:
    """Auditors see every dead letter; clerks those of their regions (none whose region is unknown)."""
    if getattr(who.role, "value", who.role) == "auditor":
        return True
    return letter.region_code is not None and letter.region_code in who.scopes


def rejection_ids(ledger: Any, page: int = 5000) -> list[UUID]:
    """Every FeedRejection in the ledger, in the order they were refused."""
    ids: list[UUID] = []
    start = 1
    while True:
        notifications = ledger.recorder.select_notifications(start, page, topics=[_REJECTED_TOPIC])
        if not notifications:
            return ids
        ids.extend(n.originator_id for n in notifications)
        start = notifications[-1].id + 1


def dead_letters(ledger: Any, *, topic: str | None = None, code: str | None = None,
                 resubmitted: bool | None = False, ids: Iterable[UUID] | None = None,
                 who: Any = None) -> list[DeadLetter]:
    """Refused records, oldest first; ``resubmitted``: False (default) only those not re-submitted yet,
    True only those re-submitted, None both. ``topic`` matches the topic with or without its prefix.
    ``who`` (a principal): only the letters it may see (:func:`visible_to`); named ``ids`` it may not
    see are refused (``DEAD_LETTER_NOT_FOUND``, as if absent: their existence is not shown)."""
    out = []
    for rejection_id in (rejection_ids(ledger) if ids is None else ids):
        try:
            rejection = ledger.repository.get(rejection_id)
        except Exception:
            rejection = None
        if ids is not None and (rejection is None or not isinstance(rejection, FeedRejection)):
            raise DomainError("DEAD_LETTER_NOT_FOUND", f"no dead letter {rejection_id} (see `ledger dlq list`) "
                                                       "(没有该拒收记录)")
        letter = _letter(rejection, ledger if who is not None else None)  # the region only when scoping
        if who is not None and not visible_to(letter, who):
            if ids is not None:
                mine = ", ".join(sorted(who.scopes)) or "-"
                raise DomainError("DEAD_LETTER_NOT_FOUND",
                                  f"no dead letter {rejection_id} in your regions {mine} (你的参保地没有该拒收记录)")
            continue
        if topic is not None and letter.topic != topic and not letter.topic.endswith("." + topic):
            continue
        if code is not None and letter.code != code:
            continue
        if resubmitted is not None and bool(letter.resubmissions) != resubmitted:
            continue
        out.append(letter)
    return out


def parse_ids(texts: Sequence[str]) -> list[UUID]:
    try:
        return [UUID(t) for t in texts]
    except ValueError:
        raise DomainError("DEAD_LETTER_ID_INVALID", "a dead letter's id is the UUID `ledger dlq list` shows") from None


def resubmit(ledger: Any, sink: Any, letters: Sequence[DeadLetter], *, user: str, reason: str,
             again: bool = False, now: datetime | None = None) -> list[DeadLetter]:
    """Produce each letter's original record to its topic, wait for the acks, then note it; returns those sent."""
    if not reason.strip():
        raise DomainError("REASON_REQUIRED", "say what was fixed (--reason): it is kept with the record")
    kept_at_entrance = [letter for letter in letters if not letter.on_feed]
    if kept_at_entrance:
        raise DomainError(
            "DEAD_LETTER_NOT_ON_FEED",
            f"dead letter {kept_at_entrance[0].id} was refused at {kept_at_entrance[0].topic.split(':')[0]}, not "
            "read from a Kafka topic: there is nothing to put back; the sender corrects the record and sends it "
            "again (该记录经接口/命令行提交，不能重新投递，请由发送方更正后重新提交)")
    rejections = [ledger.repository.get(letter.id) for letter in letters]
    chosen = [r for r in rejections if again or not r.resubmitted]
    for rejection in chosen:
        sink.send(rejection.topic, key=None if rejection.key is None else rejection.key.encode(), value=rejection.raw,
                  headers=[("resubmitted-from", f"{rejection.topic}:{rejection.partition}:{rejection.offset}".encode()),
                           ("resubmitted-by", user.encode())])
    sink.flush()  # raises unless the broker acknowledged every copy: then nothing is noted
    at = now or datetime.now(timezone.utc)
    for rejection in chosen:
        rejection.resubmit(user=user, reason=reason, at=at)
    if chosen:
        ledger.save(*chosen)
    for rejection in chosen:
        log.info("dead_letter_resubmitted", topic=rejection.topic, partition=rejection.partition,
                 offset=rejection.offset, code=rejection.code, user=user)
    return [_letter(r, ledger) for r in chosen]


__all__ = ["DeadLetter", "dead_letters", "letter_region", "open_sealed", "parse_ids", "rejection_ids", "resubmit",
           "seal", "visible_to"]
