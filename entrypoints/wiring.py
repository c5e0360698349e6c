"""The one wiring function: every entrypoint and every test builds the system here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from events.pii import KeyRing
from infra.event_store import PersonBatches, application_env
from ledger.application import Ledger
from infra.settings import Settings, load_settings, prefer_read_write
from ledger.log import configure_logging
from ledger.policy import PolicyBook

if TYPE_CHECKING:  # the feed adapters are imported only by the entrypoints that use them
    from consumers.publisher import LedgerPublisher
    from consumers.runner import ConsumerRunner


@dataclass
class System:
    settings: Settings
    policies: PolicyBook
    ledger: Ledger
    #: This deployment's cipher keys (``KeyRing.for_settings``): every part that encrypts or decrypts
    #: personal data (topic fields, dead letters, reconciliation's raw records) is given this ring, so
    #: two systems in one process (the demo beside the default, a test's two deployments) keep apart.
    keys: KeyRing = None  # type: ignore[assignment]  # set by bootstrap; a hand-built System gets settings'
    #: The embedded transport (in-memory topics) when there is no Kafka; made on first use.
    broker: Any = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = KeyRing.for_settings(self.settings)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()
        self.ledger.close()

    def topic(self, name: str) -> str:
        """A declared topic's name in this deployment (with LEDGER_TOPIC_PREFIX)."""
        return self.settings.topic_prefix + name

    def inprocess_broker(self) -> Any:
        if self.broker is None:
            from consumers.inprocess import InProcessBroker
            from infra.topics import load_topics

            self.broker = InProcessBroker({t.with_prefix(self.settings.topic_prefix).name: t.partitions
                                           for t in load_topics()})
        return self.broker

    def record_sink(self, **producer_config: Any) -> Any:
        """Where dead letters and published events go: an idempotent Kafka producer (``producer_config``
        added to :func:`consumers.kafka_io.make_producer`'s), or the in-process broker."""
        if not self.settings.kafka_bootstrap_servers:
            return self.inprocess_broker()
        from consumers.kafka_io import KafkaSink, make_producer

        sink = KafkaSink(make_producer(self.settings.kafka_bootstrap_servers, **producer_config))
        self.closers.append(sink.close)
        return sink


def bootstrap(settings: Settings | None = None, *, policies: PolicyBook | None = None) -> System:
    """Build the ledger on the store the settings name (SQLite by default)."""
    configure_logging()
    settings = settings or load_settings()
    policies = policies or PolicyBook.load(settings.policy_dir)
    if settings.persistence == "postgres":
        prefer_read_write(settings.postgres)
    # The event store adapter: its PostgreSQL factory (the binary recorder, tables created in turn)
    # and its person store (the batch path's reads and writes, the snapshots).
    ledger = Ledger(application_env(settings.event_store_env()), policies=policies, id_key=settings.id_key,
                    person_store=PersonBatches)
    return System(settings=settings, policies=policies, ledger=ledger, keys=KeyRing.for_settings(settings))


def feed_consumer(
    system: System, feed: str, *, group: str | None = None, max_records: int = 500, batch: bool = True,
    source: Any = None, sink: Any = None, poll_timeout: float = 1.0,
) -> ConsumerRunner:
    """A consumer of one inbound feed ("tax", "status", "residents") for this system.

    With KAFKA_BOOTSTRAP_SERVERS: a member of Kafka group ``group`` (default: the feed's
    consumer name, which also names its positions in the ledger); otherwise the
    embedded in-process topics.
    """
    from consumers.feeds import DEFAULT_CONSUMERS, HANDLERS, TaxPaymentsHandler
    from consumers.runner import ConsumerRunner

    if feed not in HANDLERS:
        raise ValueError(f"unknown feed {feed!r}; the ledger consumes: {', '.join(HANDLERS)}")
    name = group or DEFAULT_CONSUMERS[feed]
    handler_class = HANDLERS[feed]
    sink = sink if sink is not None else system.record_sink()
    extra = {"batch": batch} if handler_class is TaxPaymentsHandler else {}
    handler = handler_class(system.ledger, consumer=name, dead_letters=sink, keys=system.keys, **extra)
    if source is None:
        if system.settings.kafka_bootstrap_servers:
            from consumers.kafka_io import KafkaSource

            source = KafkaSource(system.settings.kafka_bootstrap_servers, group_id=name, max_poll_records=max_records)
        else:
            from consumers.inprocess import InProcessSource

            source = InProcessSource(system.inprocess_broker(), group=name)
    runner = ConsumerRunner(handler, source, topics=[system.topic(handler.base_topic)], max_records=max_records,
                            poll_timeout=poll_timeout)
    system.closers.append(runner.close)
    return runner


#: The publisher producer's linger: longer than encoding a read batch takes (see ``ledger_publisher``).
PUBLISHER_LINGER_MS = 1000


def ledger_publisher(system: System, *, sink: Any = None, batch_size: int = 2000) -> LedgerPublisher:
    """The publisher of this system's person events to ``ledger.events.v1``.

    Its producer gathers up to 1 MiB per partition and lingers up to a second: the
    publisher flushes (sends at once and waits for the acks) after every batch of
    notifications it read, so the linger only keeps the producer from sending that batch in
    pieces while it is still being encoded. With a 10 ms linger the sender thread built,
    sent and acknowledged a request every few records when the publisher followed the
    consumer (about 4,000 requests for 20,000 events), each costing Python in both threads;
    now it is about one per partition per read batch (−30 µs of CPU per event in-process,
    backlog of 4,000 events). kafka-python also wakes its sender thread for every new batch
    it starts (the default 16 KiB held a few dozen records).

    With Kafka the producer is transactional (one transaction per batch, the position inside
    it: see :mod:`consumers.publisher`), its ``transactional.id`` is
    ``medins-ledger-publisher:<LEDGER_TOPIC_PREFIX>ledger.events.v1``: one publisher per
    deployment; a second one started fences the first.
    """
    from consumers.publisher import POSITIONS_TOPIC, LedgerPublisher

    topic = system.topic("ledger.events.v1")
    if sink is None:
        if system.settings.kafka_bootstrap_servers:
            from consumers.kafka_io import TransactionalKafkaSink, publisher_transactional_id

            sink = TransactionalKafkaSink(system.settings.kafka_bootstrap_servers,
                                          transactional_id=publisher_transactional_id(topic),
                                          linger_ms=PUBLISHER_LINGER_MS, batch_size=1 << 20)
            system.closers.append(sink.close)
        else:
            sink = system.inprocess_broker()
    return LedgerPublisher(system.ledger, sink, topic=topic, positions_topic=system.topic(POSITIONS_TOPIC),
                           batch_size=batch_size, keys=system.keys)
