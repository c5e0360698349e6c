"""The source-record index (来源记录索引): one tiny aggregate per external record key.

A tax voucher (number + office) or a registry record id must take effect once,
ledger-wide, whichever person it names. The index aggregate is created in the same
transaction as the person's events, so two writers racing on one key cannot both
win (the second gets an integrity error and retries, then sees the resend). A
resend with different content is kept here as an observed conflict, for the
reconciliation, instead of being dropped.
"""
from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:medins-ledger:source-record")


class SourceRecord(Aggregate):
    """One external record key that the ledger has taken in."""

    class Taken(Aggregate.Created):
        """The record was applied to a person."""

        kind: str
        key: str
        person_id: UUID
        content_digest: str
        provenance: dict[str, str]

        def apply(self, record: SourceRecord) -> None:
            record.kind = self.kind
            record.key = self.key
            record.person_id = self.person_id
            record.content_digest = self.content_digest
            record.conflicts = []

    class ConflictObserved(Aggregate.Event):
        """The same key arrived again with different content (kept, not applied)."""

        content_digest: str
        provenance: dict[str, str]
        summary: dict[str, str]

        def apply(self, record: SourceRecord) -> None:
            record.conflicts.append({"content_digest": self.content_digest, "summary": self.summary})

    @staticmethod
    def id_for(kind: str, key: str) -> UUID:
        return uuid5(_NAMESPACE, f"{kind}:{key}")

    @classmethod
    def take(cls, *, kind: str, key: str, person_id: UUID, content_digest: str, provenance: dict[str, str]) -> SourceRecord:
        return cls._create(
            cls.Taken,
            id=cls.id_for(kind, key),
            kind=kind,
            key=key,
            person_id=person_id,
            content_digest=content_digest,
            provenance=dict(provenance),
        )

    def observe_conflict(self, *, content_digest: str, provenance: dict[str, str], summary: dict[str, str]) -> None:
        if any(c["content_digest"] == content_digest for c in self.conflicts):
            return
        self.trigger_event(
            self.ConflictObserved, content_digest=content_digest, provenance=dict(provenance), summary=dict(summary)
        )
