"""A feed record the ledger refused (拒收记录), kept so that nothing from a feed vanishes.

A Kafka record that cannot be decoded, breaks a rule, or names a person the ledger
cannot register (bad ID checksum, unknown region: "parked as unmatched with its
reason") becomes one of these, saved in the same transaction as the consumer's
position. A clerk finds it here (and on ``<topic>.dlq``) with its code, message and
the raw bytes (``ledger dlq list``), fixes the cause (a policy table, a rule, the
source's data) and either has the source resend a corrected record or puts the very
same bytes back on the topic (``ledger dlq resubmit``, kept here as ``Resubmitted``).

One aggregate per feed position: its id is derived from topic, partition and offset,
so the same record refused twice (a redelivery) is the same rejection.

A record conflict (``VOUCHER_CONFLICT``: the same voucher with other content) that came
in over HTTP or the command line is kept here too, so every conflict is in one list
whatever its entrance: its "topic" names the entrance (``api:tax-voucher``), it has no
feed position (partition and offset -1), its raw value is a small JSON note (request,
user, person id, region, what differed; no ID number), and its id is derived from the
entrance, the record key and the content, so a resend of the same content is the same
dead letter. Such a letter cannot be put on a topic (``ledger dlq resubmit`` refuses it).
"""
from __future__ import annotations

import base64
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:medins-ledger:feed-rejection")


class FeedRejection(Aggregate):
    """One refused feed record, with why it was refused."""

    class Rejected(Aggregate.Created):
        """The record at this feed position was not applied; the code says why."""

        topic: str
        partition: int
        offset: int
        key: str | None
        code: str
        message: str
        raw_base64: str
        received_at: datetime

        def apply(self, rejection: FeedRejection) -> None:
            rejection.topic = self.topic
            rejection.partition = self.partition
            rejection.offset = self.offset
            rejection.key = self.key
            rejection.code = self.code
            rejection.message = self.message
            rejection.raw_base64 = self.raw_base64
            rejection.received_at = self.received_at
            rejection.resubmissions = []

    class Resubmitted(Aggregate.Event):
        """The record was put back on its topic after a fix (重新提交), unchanged, by ``user`` for ``reason``."""

        user: str
        reason: str
        resubmitted_at: datetime

        def apply(self, rejection: FeedRejection) -> None:
            rejection.resubmissions.append(
                {"user": self.user, "reason": self.reason, "at": self.resubmitted_at, "version": self.originator_version})

    @staticmethod
    def id_for(topic: str, partition: int, offset: int) -> UUID:
        return uuid5(_NAMESPACE, f"{topic}/{partition}/{offset}")

    @staticmethod
    def id_for_entrance(entrance: str, key: str, content_digest: str) -> UUID:
        return uuid5(_NAMESPACE, f"entrance/{entrance}/{key}/{content_digest}")

    @classmethod
    def keep_refused_request(cls, rejection_id: UUID, *, entrance: str, key: str, code: str, message: str,
                             raw: bytes, received_at: datetime) -> FeedRejection:
        """A conflict refused at an entrance that has no feed position (HTTP, command line)."""
        return cls._create(cls.Rejected, id=rejection_id, topic=entrance, partition=-1, offset=-1, key=key,
                           code=code, message=message, raw_base64=base64.b64encode(raw).decode("ascii"),
                           received_at=received_at)

    @property
    def on_feed(self) -> bool:
        """Whether the record came from a Kafka feed (and can be put back on its topic)."""
        return self.partition >= 0

    @classmethod
    def reject(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: str | None,
        code: str,
        message: str,
        raw: bytes | None,
        received_at: datetime,
    ) -> FeedRejection:
        return cls._create(
            cls.Rejected,
            id=cls.id_for(topic, partition, offset),
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            code=code,
            message=message,
            raw_base64=base64.b64encode(raw or b"").decode("ascii"),
            received_at=received_at,
        )

    def resubmit(self, *, user: str, reason: str, at: datetime) -> None:
        """Note that the record was produced to its topic again (the copy is acknowledged by the broker)."""
        self.trigger_event(self.Resubmitted, user=user, reason=reason, resubmitted_at=at)

    @property
    def resubmitted(self) -> bool:
        return bool(self.resubmissions)

    @property
    def raw(self) -> bytes:
        """The record's value exactly as it arrived."""
        return base64.b64decode(self.raw_base64)
