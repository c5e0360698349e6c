"""Where each part of the pipeline stands (处理进度): positions, what is left to take (lag), dead letters.

``ledger status`` reads the positions the processes store with their effects (the
ledger's tracking table, the view store), not Kafka's committed offsets, which are only
a convenience; it asks Kafka only for the topics' ends. Per row:

* ``consumer``: an inbound feed's consumer group, per partition: the last offset taken
  into the ledger, the partition's end, the records left (lag), and the feed's open dead
  letters;
* ``publisher``: the last notification published to ``ledger.events.v1`` against the
  ledger's last notification;
* ``views (log)`` / ``views (kafka)``: the projections' stored positions against the end
  of their source;
* ``views quarantined``: one row per person whose views could not be derived
  (:func:`quarantined_persons`: masked ID, reason, the event that caused it, since when).
* ``publisher held``: one row per person whose events the publisher holds (an event it
  could not publish, and that person's later ones behind it), person id masked, with the
  code and reason of the first. Read from the publisher's committed position record on
  ``ledger.publisher.positions`` (read_committed; it fences nobody); in the embedded setup
  from the in-process broker of this process, if any.

Without ``KAFKA_BOOTSTRAP_SERVERS`` (the embedded setup) only the rows that need no
broker are shown.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from consumers.dead_letters import dead_letters
from consumers.feed_handlers import DEFAULT_CONSUMERS, HANDLERS
from consumers.publisher import LedgerPublisher, POSITIONS_TOPIC, PublisherState, mask_person
from consumers.feed_consumer import position_name
from projections.projection_runner import PROJECTIONS
from projections.factory import LEDGER_EVENTS_TOPIC, views

#: topic -> {partition: (first offset kept, next offset to be written)}
Ends = Callable[[str], Mapping[int, tuple[int, int]]]


@dataclass(frozen=True)
class Position:
    """One process's place in one partition of its source."""

    part: str  # consumer | publisher | views (log) | views (kafka)
    name: str  # consumer group / position name
    source: str  # topic, or "notification log"
    partition: int
    position: int | None  # last offset / notification id taken, None: nothing yet
    end: int | None  # last offset / notification id there is, None: none (an empty partition)
    lag: int | None  # records / notifications not taken yet
    dead_letters: int | None = None  # open dead letters of the feed (consumers only)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _lag(position: int | None, first: int, last: int) -> int:
    """Records after ``position`` up to ``last`` (``first``: the oldest still kept, for a consumer not started)."""
    taken_up_to = first - 1 if position is None else max(position, first - 1)
    return max(0, last - taken_up_to)


def _last(first: int, end: int) -> int | None:
    """The last offset a partition holds (None when it holds none: empty, or emptied by retention)."""
    return end - 1 if end > first else None


def kafka_ends(bootstrap_servers: str) -> tuple[Ends, Callable[[], None]]:
    """Ends of topics from the broker (a consumer outside any group: it joins none, moves no offset); and its close."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False,
                             client_id="medins-ledger-status")

    def ends(topic: str) -> dict[int, tuple[int, int]]:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return {}
        first, last = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        return {tp.partition: (first[tp], last[tp]) for tp in tps}

    return ends, consumer.close


def pipeline_status(system: Any, ends: Ends | None) -> list[Position]:
    """Every process's positions; ``ends`` None: no broker (only the publisher and the log-fed views)."""
    ledger = system.ledger
    rows: list[Position] = []
    last_notification = ledger.recorder.max_notification_id() or 0
    if ends is not None:
        open_letters = Counter(d.topic for d in dead_letters(ledger))
        for feed, group in DEFAULT_CONSUMERS.items():
            topic = system.topic(HANDLERS[feed].base_topic)
            for partition, (first, end) in sorted(ends(topic).items()):
                position = ledger.position(position_name(group, topic, partition))
                rows.append(Position("consumer", group, topic, partition, position, _last(first, end),
                                     _lag(position, first, end - 1), open_letters.get(topic, 0)))
    events_topic = system.topic(LEDGER_EVENTS_TOPIC)
    published = ledger.position(LedgerPublisher.position_name_for(events_topic)) or 0
    rows.append(Position("publisher", LedgerPublisher.position_name_for(events_topic), "notification log", 0,
                         published, last_notification, max(0, last_notification - published)))
    store = views(system)
    for partition, position in sorted((store.positions("log", PROJECTIONS) or {0: None}).items()):
        rows.append(Position("views (log)", "log", "notification log", partition, position, last_notification,
                             _lag(position, 1, last_notification)))
    if ends is not None:
        stored = store.positions(f"kafka:{events_topic}", PROJECTIONS)
        for partition, (first, end) in sorted(ends(events_topic).items()):
            position = stored.get(partition)
            rows.append(Position("views (kafka)", f"kafka:{events_topic}", events_topic, partition, position,
                                 _last(first, end), _lag(position, first, end - 1)))
    return rows


def quarantined_persons(system: Any) -> list[dict[str, Any]]:
    """The persons whose views are in quarantine (projections.projection_runner), as ``ledger status`` rows."""
    return [{"part": "views quarantined", **q.as_dict()} for q in views(system).quarantined()]



def held_persons(system: Any) -> list[dict[str, Any]]:
    """The persons the publisher holds, as ``ledger status`` lists them (person masked, first event's code/reason)."""
    key = LedgerPublisher.position_name_for(system.topic(LEDGER_EVENTS_TOPIC)).encode()
    topic = system.topic(POSITIONS_TOPIC)
    if system.settings.kafka_bootstrap_servers:
        from consumers.kafka_io import last_committed_value

        try:
            raw = last_committed_value(system.settings.kafka_bootstrap_servers, topic, key, timeout=10.0)
        except Exception as e:  # noqa: BLE001 - say so in the status rather than fail the whole command
            return [{"part": "publisher held", "person": "?", "notification_id": None, "events": None,
                     "code": "PUBLISHER_POSITIONS_UNREADABLE",
                     "reason": f"无法读取发布位置主题 {topic}(cannot read {topic}: {type(e).__name__}: {e})"}]
    elif system.broker is not None:
        raw = system.broker.last_value(topic, key)
    else:
        raw = None
    if not raw:
        return []
    rows = []
    for person, events in PublisherState.from_bytes(raw).held_persons().items():
        first = events[0]
        rows.append({"part": "publisher held", "person": mask_person(person), "notification_id": first.notification_id,
                     "events": len(events), "code": first.code, "reason": first.reason})
    return rows


__all__ = ["Position", "held_persons", "kafka_ends", "pipeline_status", "quarantined_persons"]
