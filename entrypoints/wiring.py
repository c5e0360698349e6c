"""The one wiring function: every entrypoint and every test builds the system here."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

from entrypoints import catalogue
from events.pii import KeyRing
from infra.event_store import PersonBatches, application_env
from ledger.application import Ledger
from infra.settings import Settings, load_settings, prefer_read_write
from ledger.log import configure_logging, get_logger
from ledger.policy import PolicyBook, PolicyFileError
from ledger.policy.readiness import missing_years
from consumers.feed_handlers import DEFAULT_CONSUMERS, HANDLERS, TaxPaymentsHandler
from consumers.inprocess import InProcessBroker, InProcessSource
from consumers.publisher import LedgerPublisher, POSITIONS_TOPIC
from consumers.feed_consumer import ConsumerRunner
from infra.topics import load_topics
from infra.places import load_places
from ledger.domain.places import PlaceNames
from consumers.file_feeder import FEEDS, FILE_TOPIC_SUFFIX, apply_in_process, feed_file
from ledger.domain.errors import DomainError
from reconciliation.consumer import DEFAULT_CONSUMER, StatementConsumer, StatementsHandler
from reconciliation.statement_files import statement_file
from reconciliation.factory import ledger_side_runner, reconciler
# consumers.kafka_io (kafka-python, about 0.4 s to import) is imported in the functions that use a broker, so
# that the embedded setup (SQLite, in-process topics) never loads it.


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
    #: The places table (:func:`place_names`), read on first use.
    _places: PlaceNames | None = field(default=None, repr=False)

    @property
    def places(self) -> PlaceNames:
        """Township and village names with their validity (``LEDGER_PLACES_FILE``, else the packaged sample)."""
        if self._places is None:
            self._places = place_names(self.settings)
        return self._places

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


def policy_book(settings: Settings | None = None) -> PolicyBook:
    """The policy tables this deployment assesses with: ``LEDGER_POLICY_DIR``, else the packaged ones.

    The ledger (:func:`bootstrap`) and ``ledger policy`` both read them here, so what a clerk
    is shown is what the ledger used. A malformed or invalid table file is the stable
    ``POLICY_FILE_INVALID`` naming the file and line, never a traceback.
    """
    settings = settings or load_settings()
    try:
        return PolicyBook.load(settings.policy_dir)
    except PolicyFileError as e:
        raise e.as_domain_error() from None


def place_names(settings: Settings | None = None) -> PlaceNames:
    """The places table this deployment names townships and villages with: ``LEDGER_PLACES_FILE``, else the
    packaged sample (示例: names for the simulated county's codes, not official). ``PLACES_FILE_INVALID``
    names the file and line of a bad one."""
    settings = settings or load_settings()
    return load_places(settings.places_file)


def warn_missing_policy_years(policies: PolicyBook, today: date | None = None, *, stream: Any = None,
                              lang: str | None = None) -> list[Any]:
    """The startup check: tables for the running year and the year whose concentrated period is open.

    A missing year is a loud warning (a structlog WARNING and a line on stderr, in ``lang``: the run's
    language, Chinese by default) at startup, so an agency sees it before the first assessment of that year fails.
    """
    missing = missing_years(policies, today or date.today())
    if missing:
        lang = lang or catalogue.run_lang()
        get_logger("entrypoints.wiring").warning(
            "policy_year_missing", missing=[f"{m.region_code}/{m.coverage_year}" for m in missing],
            policy_dir=str(policies.directory))
        parts = []
        for year in sorted({m.coverage_year for m in missing}):
            rows = [m for m in missing if m.coverage_year == year]
            parts.append(catalogue.text("startup", "policy_year_part", lang, year=year,
                                        why=catalogue.text("startup", f"why_{rows[0].reason}", lang),
                                        regions=catalogue.text("startup", "sep", lang).join(m.region_code for m in rows)))
        print(catalogue.text("startup", "policy_year_missing", lang,
                             years=catalogue.text("startup", "part_sep", lang).join(parts),
                             directory=policies.directory), file=stream or sys.stderr)
    return missing


def bootstrap(settings: Settings | None = None, *, policies: PolicyBook | None = None) -> System:
    """Build the ledger on the store the settings name (SQLite by default)."""
    configure_logging()
    settings = settings or load_settings()
    if policies is None:
        policies = policy_book(settings)
        warn_missing_policy_years(policies)
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


def file_feed(system: System, feed: str, data: bytes, filename: str, *, dry_run: bool = False) -> Any:
    """``ledger feed FEED FILE``: check the file and send its good rows to the feed's topic; without Kafka,
    apply them to the ledger (or, for ``statements``, the reconciliation store) through the feed's own
    consumer (:func:`consumers.file_feeder.apply_in_process`). The :class:`~consumers.file_feeder.FeedReport`."""
    if feed == "statements":
        def fill(sink: Any, topic: str) -> Any:
            return statement_file(data, filename, sink, topic=topic, id_key=system.settings.id_key, dry_run=dry_run)
        base = "tax.statements.v1"
    else:
        def fill(sink: Any, topic: str) -> Any:
            return feed_file(feed, data, filename, sink, topic=topic, dry_run=dry_run)
        base = None
    if dry_run:
        return fill(None, system.topic(base) if base else _feed_topic(system, feed))
    if system.settings.kafka_bootstrap_servers:
        return fill(system.record_sink(), system.topic(base) if base else _feed_topic(system, feed))
    topic = (system.topic(base) if base else _feed_topic(system, feed)) + FILE_TOPIC_SUFFIX
    if feed == "statements":
        report = apply_in_process(topic, fill, lambda sink: _statements_handler(system, sink))
        _reconcile_now(system)
        return report
    def handler(sink: Any) -> Any:
        made = HANDLERS[feed](system.ledger, consumer=DEFAULT_CONSUMERS[feed], dead_letters=sink, keys=system.keys)
        made.provenance_source = "file"
        return made

    return apply_in_process(topic, fill, handler)


def _feed_topic(system: System, feed: str) -> str:
    if feed not in FEEDS:
        raise DomainError("FEED_UNKNOWN", f"unknown feed {feed!r}; feeds: {', '.join(FEEDS)}, statements")
    return system.topic(FEEDS[feed].topic)


def _statements_handler(system: System, sink: Any) -> Any:
    return StatementsHandler(reconciler(system), id_key=system.settings.id_key, dead_letters=sink,
                             consumer=DEFAULT_CONSUMER, keys=system.keys)


def _reconcile_now(system: System) -> None:
    """After a statements file without a broker: the ledger side caught up, complete statements compared
    (what ``ledger reconcile run`` does)."""
    recon = reconciler(system)
    StatementConsumer(None, recon, ledger_side=ledger_side_runner(system, recon, source="log")).run_once()
