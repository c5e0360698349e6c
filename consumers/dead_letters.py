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

from events import pii
from ledger.domain.errors import DomainError
from ledger.domain.feed_rejection import FeedRejection
from ledger.log import get_logger, mask_text

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

    @property
    def source(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def as_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "source": self.source, "topic": self.topic, "partition": self.partition,
                "offset": self.offset, "key": self.key, "code": self.code, "message": self.message,
                "received_at": self.received_at.isoformat(), "bytes": self.size,
                "resubmitted": [{**r, "at": r["at"].isoformat()} for r in self.resubmissions]}


ENC_HEADER = "enc"
KEY_HEADER = "enc.key"


def seal(value: bytes, headers: Sequence[tuple[str, bytes]], keys: pii.KeyRing | None = None,
         ) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A dead letter's value encrypted and its headers (``enc``, ``enc.key``; the error message masked)."""
    ring = keys or pii.deployment_keys()
    out = [(k, mask_text(v.decode("utf-8", "replace")).encode() if k == "error.message" else v) for k, v in headers]
    out += [(ENC_HEADER, pii.SCHEME.encode()), (KEY_HEADER, ring.current_id_hex.encode())]
    return ring.encrypt(value), out


def open_sealed(value: bytes, headers: Sequence[tuple[str, Any]], keys: pii.KeyRing | None = None) -> bytes:
    """The original record of a dead letter read from ``<topic>.dlq`` (see :func:`seal`)."""
    found = {k: (v.decode() if isinstance(v, (bytes, bytearray)) else v) for k, v in headers}
    if found.get(ENC_HEADER) is None:
        return value
    if found[ENC_HEADER] != pii.SCHEME:
        raise DomainError("DEAD_LETTER_ENCRYPTION_UNKNOWN",
                          f"死信的加密方式 {found[ENC_HEADER]!r} 无法识别 (unknown dead-letter encryption)")
    return (keys or pii.deployment_keys()).decrypt(value)


def _letter(rejection: FeedRejection) -> DeadLetter:
    return DeadLetter(
        id=rejection.id, topic=rejection.topic, partition=rejection.partition, offset=rejection.offset,
        key=rejection.key, code=rejection.code, message=mask_text(rejection.message),
        received_at=rejection.received_at, size=len(rejection.raw),
        resubmissions=tuple(getattr(rejection, "resubmissions", ())))


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
                 resubmitted: bool | None = False, ids: Iterable[UUID] | None = None) -> list[DeadLetter]:
    """Refused records, oldest first; ``resubmitted``: False (default) only those not re-submitted yet,
    True only those re-submitted, None both. ``topic`` matches the topic with or without its prefix."""
    out = []
    for rejection_id in (rejection_ids(ledger) if ids is None else ids):
        letter = _letter(ledger.repository.get(rejection_id))
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
    return [_letter(r) for r in chosen]


__all__ = ["DeadLetter", "dead_letters", "open_sealed", "parse_ids", "rejection_ids", "resubmit", "seal"]
