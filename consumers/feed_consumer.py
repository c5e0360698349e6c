"""The transport-agnostic core of the feed consumers: messages in, ledger writes and positions out.

A feed handler takes one partition's batch of :class:`Message` objects (from Kafka
through :class:`consumers.kafka_io.KafkaSource`, or from the embedded in-process
topic of :mod:`consumers.inprocess`) and applies them to the ledger **exactly once**:

* the consumer's position in the feed is a :class:`~eventsourcing.persistence.Tracking`
  ``(f"{consumer}:{topic}:{partition}", offset)`` that the ledger's process recorder
  writes into its tracking table in the same transaction as the events the record
  caused (or as its :class:`~ledger.domain.feed_rejection.FeedRejection`, or alone
  when the record was a resend);
* on start and after every rebalance the consumer seeks each partition to the stored
  position + 1, and the handler skips anything at or below it; Kafka's own committed
  offsets are only a convenience for monitoring tools;
* an error a record causes (bad bytes, a broken rule, a person that cannot be
  registered) is a rejection: saved with the position, then produced to
  ``<topic>.dlq`` (at least once: a crash before the dead letter was acknowledged is
  repaired on the partition's next batch), and the consumer goes on;
* anything else (database down, a lost race, a bug) is not a rejection: the batch
  stops without recording its position and is redone later.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from threading import Event
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Tracking

from consumers.dead_letters import seal
from events.pii import KeyRing, deployment_keys
from ledger.application import Ledger, Outcome
from ledger.domain.errors import DomainError
from ledger.domain.feed_rejection import FeedRejection
from ledger.log import get_logger
from ledger.inbound_records import Provenance

#: Errors with these codes are a moment's trouble, not the record's fault: redo, don't reject.
TRANSIENT_CODES = frozenset({"CONCURRENT_UPDATE"})
#: Dead-letter progress is stored at least this often (offsets), bounding the repair scan.
DEAD_LETTER_MARK_EVERY = 1000
#: The repair scan never looks further back than this many offsets.
MAX_DEAD_LETTER_SCAN = 20_000
#: Seconds between two commits of offsets to the broker while running (a convenience for monitoring).
OFFSET_COMMIT_INTERVAL = 1.0


@dataclass(frozen=True)
class Message:
    """One feed record, whatever carried it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", errors="replace")


class TransientError(Exception):
    """The batch could not be processed now; nothing of it was recorded as a rejection. Redo it."""


class RecordSink(Protocol):
    """Where records are produced (dead letters, published events)."""

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None: ...

    def flush(self) -> None:
        """Block until everything sent is acknowledged; raise if anything was not."""


class RecordRefused(Exception):
    """The broker or the client refused this one record for good (too large, invalid): other records may go.

    A transactional sink raises it from ``send`` (the record is not in the transaction);
    any other error from ``send`` is about the transport and fails the whole batch.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


class Source(Protocol):
    """Where messages come from: a Kafka consumer in a group, or the in-process topics."""

    def subscribe(
        self,
        topics: Sequence[str],
        on_assigned: Callable[[list[tuple[str, int]]], None],
        on_revoked: Callable[[list[tuple[str, int]]], None],
    ) -> None: ...

    def poll(self, timeout: float, max_records: int) -> list[Message]: ...

    def seek(self, topic: str, partition: int, offset: int | None) -> None:
        """Read ``partition`` from ``offset`` next (None: from the beginning)."""

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Tell the broker the next offset per partition (a convenience; positions live in the ledger)."""

    def close(self) -> None: ...


def position_name(consumer: str, topic: str, partition: int) -> str:
    """The tracking name of a consumer's position in one partition."""
    return f"{consumer}:{topic}:{partition}"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def dead_letter_key(topic: str, partition: int, offset: int) -> bytes:
    """The same refused record always gets the same key, so a resent dead letter is recognisable."""
    return f"{topic}:{partition}:{offset}".encode()


def is_rejection(error: BaseException) -> bool:
    """Is this the record's own fault (reject it) rather than a moment's or a deployment's trouble?"""
    return (
        isinstance(error, DomainError)
        and error.http_status < 500
        and error.code not in TRANSIENT_CODES
    )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class BatchResult:
    """What one partition-batch did."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    skipped: int = 0  # at or below the stored position: processed before
    applied: int = 0
    unchanged: int = 0  # resends, already-recorded records
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (offset, code)


class FeedHandler(ABC):
    """Applies one feed's records to the ledger, one partition-batch at a time, exactly once."""

    #: Short feed name used on the command line ("tax", "status", "residents").
    feed: str = ""
    #: The topic as declared in infra/topics.toml (without a test or deployment prefix).
    base_topic: str = ""

    def __init__(
        self,
        ledger: Ledger,
        *,
        consumer: str,
        dead_letters: RecordSink,
        clock: Callable[[], datetime] = utc_now,
        keys: KeyRing | None = None,
    ) -> None:
        self.ledger = ledger
        #: The key ring dead letters are sealed with: the system's (``entrypoints.wiring``); a handler
        #: built by hand (tests, tools) takes the environment's deployment ring.
        self.keys = keys or deployment_keys()
        self.consumer = consumer
        self.dead_letters = dead_letters
        self.clock = clock
        self.log = get_logger("consumers.feed", consumer=consumer, feed=self.feed)
        self._dead_letter_marks: dict[tuple[str, int], int | None] = {}

    # ------------------------------------------------------------ positions
    def position(self, topic: str, partition: int) -> int | None:
        """The last offset of this partition the ledger has taken (with its effects)."""
        return self.ledger.position(position_name(self.consumer, topic, partition))

    def tracking(self, message: Message) -> Tracking:
        return Tracking(position_name(self.consumer, message.topic, message.partition), message.offset)

    def forget(self, topic: str, partition: int) -> None:
        """The partition went to another consumer: re-check its dead letters if it comes back."""
        self._dead_letter_marks.pop((topic, partition), None)

    # ------------------------------------------------------------ one batch
    def handle(self, messages: Sequence[Message]) -> BatchResult:
        """Apply one partition's messages (ascending offsets) and record the position.

        Raises :class:`TransientError` (or the underlying error) when the batch must be
        redone; whatever part of it was committed is recognised then by its position.
        """
        return self.begin(messages)()

    def prepare(self, messages: Sequence[Message]) -> Any:
        """Work on a batch that needs nothing from the ledger (decoding), handed to :meth:`begin` later.

        The runner calls it while the previous batch's write may still be in flight.
        """
        return None

    def begin(self, messages: Sequence[Message], prepared: Any = None, *,
              background: bool = False) -> Callable[[], BatchResult]:
        """:meth:`handle` in two steps: call the returned function to finish the batch.

        With ``background``, a handler that can leaves its last write (the one carrying the
        position) in flight on the ledger's writer thread when this returns. The returned
        function waits for it, then sends the dead letters and returns the result; it raises
        what ``handle`` would. Call it before anything else reads or writes the ledger.
        ``prepared`` is what :meth:`prepare` gave for the same messages (or None).
        """
        if not messages:
            raise ValueError("an empty batch has no position")
        topic, partition = messages[0].topic, messages[0].partition
        if any(m.topic != topic or m.partition != partition for m in messages):
            raise ValueError("a batch holds the messages of one partition")
        result = BatchResult(topic, partition, messages[0].offset, messages[-1].offset)
        if (topic, partition) not in self._dead_letter_marks:
            self._repair_dead_letters(topic, partition)
        stored = self.position(topic, partition)
        fresh = [m for m in messages if stored is None or m.offset > stored]
        result.skipped = len(messages) - len(fresh)
        process: Callable[[], list[tuple[Message, DomainError]]] | None = None
        if fresh:
            try:
                process = self._begin_process(fresh, result, prepared, background)
            except BaseException:
                # Part of the batch may be committed, rejections included: check their dead letters next time.
                self._dead_letter_marks.pop((topic, partition), None)
                raise

        def complete() -> BatchResult:
            if process is not None:
                try:
                    rejected = process()
                except BaseException:
                    self._dead_letter_marks.pop((topic, partition), None)
                    raise
                result.rejected = [(m.offset, e.code) for m, e in rejected]
                self._send_dead_letters(topic, partition, [(m, e.code, e.message) for m, e in rejected],
                                        fresh[-1].offset)
            self.log.info(
                "batch_processed", topic=topic, partition=partition, first_offset=result.first_offset,
                last_offset=result.last_offset, applied=result.applied, unchanged=result.unchanged,
                rejected=len(result.rejected), skipped=result.skipped,
            )
            return result

        return complete

    def _begin_process(
        self, fresh: Sequence[Message], result: BatchResult, prepared: Any, background: bool
    ) -> Callable[[], list[tuple[Message, DomainError]]]:
        """:meth:`_process`, possibly with its last write in flight: the returned function finishes it."""
        rejected = self._process(fresh, result)
        return lambda: rejected

    @abstractmethod
    def _process(self, fresh: Sequence[Message], result: BatchResult) -> list[tuple[Message, DomainError]]:
        """Apply the messages and record the position of the last one; return the rejections."""

    # ------------------------------------------------------------ helpers for the feeds
    #: What the events' provenance calls the feed's transport: ``file`` when a feed file is applied
    #: without a broker (``ledger feed`` on the embedded default).
    provenance_source: str = "kafka"

    def provenance(self, message: Message) -> Provenance:
        return Provenance(
            source=self.provenance_source, topic=message.topic, partition=message.partition, offset=message.offset,
            record_key=message.key_text,
        )

    def _count(self, outcome: Outcome, result: BatchResult) -> None:
        if outcome.applied:
            result.applied += 1
        else:
            result.unchanged += 1

    def _apply_each(
        self, fresh: Sequence[Message], result: BatchResult, apply: Callable[[Message, Tracking], Outcome]
    ) -> list[tuple[Message, DomainError]]:
        """One transaction per record: its effects (or its rejection) with its position."""
        rejected: list[tuple[Message, DomainError]] = []
        for message in fresh:
            tracking = self.tracking(message)
            try:
                outcome = apply(message, tracking)
            except Exception as e:
                if not is_rejection(e):
                    raise TransientError(f"{message.topic}[{message.partition}]@{message.offset}: {e}") from e
                assert isinstance(e, DomainError)
                self.save_rejections(tracking, [(message, e)])
                rejected.append((message, e))
                continue
            self._count(outcome, result)
        return rejected

    def rejection(self, message: Message, error: DomainError) -> FeedRejection:
        return FeedRejection.reject(
            topic=message.topic, partition=message.partition, offset=message.offset, key=message.key_text,
            code=error.code, message=error.message, raw=message.value, received_at=self.clock(),
        )

    def log_rejections(self, rejected: Sequence[tuple[Message, DomainError]]) -> None:
        for message, error in rejected:
            self.log.warning(
                "record_rejected", topic=message.topic, partition=message.partition, offset=message.offset,
                code=error.code, error=error.message,
            )

    def save_rejections(self, tracking: Tracking, rejected: Sequence[tuple[Message, DomainError]]) -> None:
        """Keep the rejections and record the position, in one transaction."""
        self.log_rejections(rejected)
        aggregates = [self.rejection(m, e) for m, e in rejected]
        try:
            self.ledger.record_position(tracking, *aggregates)
        except IntegrityError:
            # The same record was refused before under another consumer name: keep that one.
            kept = [a for a in aggregates if not self._exists(a.id)]
            self.ledger.record_position(tracking, *kept)

    def _exists(self, aggregate_id: Any) -> bool:
        try:
            self.ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return False
        return True

    # ------------------------------------------------------------ dead letters
    def _dead_letter_name(self, topic: str, partition: int) -> str:
        return position_name(self.consumer, topic, partition) + ":dead-lettered"

    def _send_dead_letters(
        self, topic: str, partition: int, refused: Sequence[tuple[Message, str, str]], up_to: int
    ) -> None:
        """Produce the refused records to ``<topic>.dlq`` and note how far that got."""
        mark = self._dead_letter_marks.get((topic, partition))
        if not refused and mark is not None and up_to - mark < DEAD_LETTER_MARK_EVERY:
            return
        try:
            for message, code, text in refused:
                # Encrypted (the record's bytes hold ID numbers): consumers.dead_letters.seal.
                value, headers = seal(message.value or b"", keys=self.keys, headers=[
                    ("error.code", code.encode()),
                    ("error.message", text.encode()),
                    ("source.topic", message.topic.encode()),
                    ("source.partition", str(message.partition).encode()),
                    ("source.offset", str(message.offset).encode()),
                ])
                self.dead_letters.send(
                    dead_letter_topic(message.topic),
                    key=dead_letter_key(message.topic, message.partition, message.offset),
                    value=value, headers=headers,
                )
            self.dead_letters.flush()
        except Exception as e:
            # The rejections are kept in the ledger; the next batch of this partition resends them.
            self._dead_letter_marks.pop((topic, partition), None)
            raise TransientError(f"dead letters of {topic}[{partition}] not acknowledged: {e}") from e
        try:
            self.ledger.recorder.insert_tracking(Tracking(self._dead_letter_name(topic, partition), up_to))
        except IntegrityError:
            pass  # another consumer got further
        self._dead_letter_marks[(topic, partition)] = up_to

    def _repair_dead_letters(self, topic: str, partition: int) -> None:
        """Resend the dead letters of rejections kept after the last acknowledged ones (a crash in between)."""
        mark = self.ledger.position(self._dead_letter_name(topic, partition))
        stored = self.position(topic, partition)
        if stored is None or (mark is not None and mark >= stored):
            self._dead_letter_marks[(topic, partition)] = mark if mark is not None else stored
            return
        start = -1 if mark is None else mark
        if stored - start > MAX_DEAD_LETTER_SCAN:
            self.log.warning("dead_letter_scan_capped", topic=topic, partition=partition, since=start, upto=stored)
            start = stored - MAX_DEAD_LETTER_SCAN
        ids = {FeedRejection.id_for(topic, partition, o): o for o in range(start + 1, stored + 1)}
        kept = self.ledger.load_many(ids)
        refused = []
        for rejection in sorted(kept.values(), key=lambda r: r.offset):
            message = Message(
                topic, partition, rejection.offset, None if rejection.key is None else rejection.key.encode(),
                rejection.raw,
            )
            refused.append((message, rejection.code, rejection.message))
        self._dead_letter_marks[(topic, partition)] = None
        if refused:
            self.log.info("dead_letters_resent", topic=topic, partition=partition, count=len(refused))
        self._send_dead_letters(topic, partition, refused, stored)


class ConsumerRunner:
    """Poll, hand each partition's batch to the handler, commit offsets to the broker as a convenience."""

    def __init__(
        self,
        handler: FeedHandler,
        source: Source,
        *,
        topics: Sequence[str],
        max_records: int = 500,
        poll_timeout: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.handler = handler
        self.source = source
        self.topics = list(topics)
        self.max_records = max_records
        self.poll_timeout = poll_timeout
        self.max_backoff = max_backoff
        self.log = get_logger("consumers.feed_consumer", consumer=handler.consumer, feed=handler.feed)
        #: The partitions this instance owns right now (its share of the group).
        self.assignment: set[tuple[str, int]] = set()
        self._started = False
        #: The batch whose write is in flight: (partition, its messages, the function that finishes it).
        self._pending: tuple[tuple[str, int], list[Message], Callable[[], BatchResult]] | None = None
        #: Batches finished while a poll failed: reported with the next poll's results.
        self._settled: list[BatchResult] = []
        #: Next offsets of finished batches, not yet committed to the broker.
        self._to_commit: dict[tuple[str, int], int] = {}
        self._committed_at = float("-inf")
        #: Partitions to read again from these offsets (batches that failed), applied by _rewind.
        self._redo: dict[tuple[str, int], int] = {}

    def start(self) -> None:
        if not self._started:
            self.source.subscribe(self.topics, on_assigned=self._assigned, on_revoked=self._revoked)
            self._started = True

    def _assigned(self, partitions: list[tuple[str, int]]) -> None:
        # (kafka-python 3 runs the rebalance callbacks on its IO thread, maybe while a batch's
        # write is in flight: they do not wait for it. Blocking that thread there left the group
        # never rejoined, the consumer spinning in poll. A position read before that write
        # commits is older: the batch is read again and skipped by position once finished here,
        # or, on another consumer, recognised record by record as resends by the voucher index.)
        self._redo.clear()  # every partition is sought to its stored position now
        self.assignment.update(partitions)
        for topic, partition in partitions:
            stored = self.handler.position(topic, partition)
            self.source.seek(topic, partition, None if stored is None else stored + 1)
            self.log.info("partition_assigned", topic=topic, partition=partition,
                          resume_at=0 if stored is None else stored + 1)

    def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        self.assignment.difference_update(partitions)
        for topic, partition in partitions:
            self._to_commit.pop((topic, partition), None)
            self.handler.forget(topic, partition)
            self.log.info("partition_revoked", topic=topic, partition=partition)

    def run_once(self, timeout: float | None = None) -> list[BatchResult]:
        """One poll: every partition-batch in it processed (or the exception that stopped it)."""
        results = self._poll_and_handle(timeout)
        if self._pending is not None:  # (the poll returned records)
            results.extend(self._settle_or_rewind())
            self._commit_offsets(force=True)
        return results

    def _poll_and_handle(self, timeout: float | None) -> list[BatchResult]:
        """One poll, each partition-batch handled; the last one's write may be left in flight (``_pending``).

        The write of batch N (its events with its position, one transaction) is committed
        on the ledger's writer thread while this thread polls batch N+1 and decodes it
        (``handler.prepare``: nothing read from the ledger). Batch N is finished
        (:meth:`_settle`: commit awaited, dead letters sent, offset committed to the broker)
        before batch N+1 reads the ledger, so every batch sees the previous one's writes,
        and a crash at any moment leaves the ledger as the sequential loop would have: each
        batch committed whole with its position, or not at all.
        """
        self.start()
        # (The poll timeout stays the configured one with a write in flight: a kafka-python 3 poll
        # that times out in the middle of a rebalance can leave the group never rejoined. When
        # the feed is quiet, the last batch's dead letters and log line wait for the timeout;
        # its commit, done by the writer thread, does not.)
        if timeout is None:
            timeout = self.poll_timeout
        try:
            messages = self.source.poll(timeout, self.max_records)
        except BaseException:
            self._settle_or_log()
            self._rewind()
            raise
        batches = list(group_by_partition(messages).items())
        results = self._settled
        self._settled = []
        if not batches:
            # (The offsets wait for a poll that returns records: an empty poll may have ended
            # inside a rebalance, and kafka-python 3 does not recover from a commit refused then.)
            results.extend(self._settle_or_rewind())
            return results
        for n, (tp, batch) in enumerate(batches):
            try:
                prepared = self._prepare(batch)
                results.extend(self._settle())  # the previous batch committed before this one reads the ledger
                self._commit_offsets()
                complete = self._begin(batch, prepared)
            except BaseException:
                # Read the unfinished batches again, each partition from its earliest one (the batch
                # in flight, if its write failed); their committed part is skipped by position.
                self._settle_or_log()
                for other, rest in batches[n:]:
                    self._redo_from(other, rest[0].offset)
                self._rewind()
                raise
            self._pending = (tp, batch, complete)
        return results

    def _prepare(self, batch: list[Message]) -> Any:
        prepare = getattr(self.handler, "prepare", None)  # handlers with only handle() (the statements') too
        return None if prepare is None else prepare(batch)

    def _begin(self, batch: list[Message], prepared: Any) -> Callable[[], BatchResult]:
        begin = getattr(self.handler, "begin", None)
        if begin is None:
            result = self.handler.handle(batch)
            return lambda: result
        return begin(batch, prepared, background=True)

    def _settle(self) -> list[BatchResult]:
        """Finish the batch whose write is in flight, if any: its result, or its error.

        A failed batch is noted to be read again (``_redo``); the caller rewinds (:meth:`_rewind`)
        once it knows every partition's earliest unfinished offset: seeking a partition past a
        failed batch would lose it (the next batch's position would cover it).
        """
        pending, self._pending = self._pending, None
        if pending is None:
            return []
        tp, batch, complete = pending
        try:
            result = complete()
        except BaseException:
            self._redo_from(tp, batch[0].offset)
            raise
        self._to_commit[tp] = batch[-1].offset + 1
        return [result]

    def _settle_or_rewind(self) -> list[BatchResult]:
        try:
            return self._settle()
        except BaseException:
            self._rewind()
            raise

    def _redo_from(self, tp: tuple[str, int], offset: int) -> None:
        known = self._redo.get(tp)
        if known is None or offset < known:
            self._redo[tp] = offset

    def _commit_offsets(self, *, force: bool = False) -> None:
        """Commit the finished batches' offsets to the broker (only right after a poll that returned records).

        At most every ``OFFSET_COMMIT_INTERVAL`` seconds unless ``force``: each commit is a
        synchronous round trip to the broker (~10 ms, every batch before), and the broker's
        offsets are only for monitoring tools.
        """
        if not self._to_commit:
            return
        now = time.monotonic()
        if not force and now - self._committed_at < OFFSET_COMMIT_INTERVAL:
            return
        offsets, self._to_commit = self._to_commit, {}
        self._committed_at = now
        self._commit(offsets)

    def _settle_or_log(self) -> None:
        """:meth:`_settle` where its error must not hide another one (the caller rewinds; results kept for
        the next poll's)."""
        try:
            self._settled.extend(self._settle())
        except Exception as e:
            self.log.error("batch_failed_will_retry", error=str(e), error_type=type(e).__name__)

    def _rewind(self) -> None:
        redo, self._redo = self._redo, {}
        for (topic, partition), offset in redo.items():
            self.source.seek(topic, partition, offset)

    def _commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        try:
            self.source.commit(offsets)
        except Exception as e:  # only a convenience: the positions are in the ledger
            self.log.warning("offset_commit_failed", error=str(e))

    def run(self, stop: Event | None = None, *, max_failures: int | None = None,
            idle_stop: float | None = None) -> None:
        """Run until ``stop`` is set; a failing batch is retried with backoff (``max_failures`` in a row: raise).

        ``idle_stop`` ends the run after that many seconds without a message while owning
        partitions (``--once`` style runs).
        """
        stop = stop or Event()
        failures = 0
        idle_since = time.monotonic()
        self.start()
        try:
            while not stop.is_set():
                try:
                    results = self._poll_and_handle(None)
                except Exception as e:
                    failures += 1
                    self.log.error("batch_failed_will_retry", error=str(e), error_type=type(e).__name__,
                                   failures=failures)
                    if max_failures is not None and failures >= max_failures:
                        raise
                    stop.wait(min(self.max_backoff, 0.5 * 2 ** (failures - 1)))
                    continue
                failures = 0
                # (idle only counts once this instance owns partitions; a batch in flight is not idle)
                if results or self._pending is not None or not self.assignment:
                    idle_since = time.monotonic()
                elif idle_stop is not None and time.monotonic() - idle_since >= idle_stop:
                    return
        finally:
            self._settle_or_log()
            self._rewind()  # a later run() must not start past a batch that failed now

    def close(self) -> None:
        self._settle_or_log()
        self.source.close()


def group_by_partition(messages: Iterable[Message]) -> dict[tuple[str, int], list[Message]]:
    out: dict[tuple[str, int], list[Message]] = {}
    for message in messages:
        out.setdefault((message.topic, message.partition), []).append(message)
    return out
