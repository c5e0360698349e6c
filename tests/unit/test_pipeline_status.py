"""``ledger status``: each process's stored position against its source's end, and the lag between."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from eventsourcing.persistence import Tracking

from consumers.feed_consumer import position_name
from entrypoints.status import pipeline_status
from entrypoints.wiring import bootstrap, ledger_publisher
from entrypoints.cli import main
from infra.settings import Settings
from ledger.domain.feed_rejection import FeedRejection
from projections.factory import projection_runner
from tests.unit.projection_support import enroll, number, pay_year


@pytest.fixture()
def system():
    s = bootstrap(Settings(persistence="memory", id_key=b"status-test"))
    enroll(s.ledger, number(1), date(2024, 9, 10))
    pay_year(s.ledger, number(1), 2025, date(2024, 10, 8))
    yield s
    s.close()


def rows_of(rows, part):
    return [r for r in rows if r.part == part]


def test_without_a_broker_the_publisher_and_log_views_show_what_is_left(system):
    last = system.ledger.recorder.max_notification_id()
    rows = pipeline_status(system, None)
    assert not rows_of(rows, "consumer") and not rows_of(rows, "views (kafka)")
    (publisher,) = rows_of(rows, "publisher")
    (views,) = rows_of(rows, "views (log)")
    assert (publisher.position, publisher.end, publisher.lag) == (0, last, last)
    assert (views.position, views.lag) == (None, last)

    ledger_publisher(system).publish_pending()
    projection_runner(system).run_once()
    rows = pipeline_status(system, None)
    assert [(r.position, r.lag) for r in rows] == [(last, 0), (last, 0)]


def test_consumer_lag_is_the_records_after_the_stored_position(system):
    topic = "tax.payments.v1"
    name = position_name("ledger-tax-payments", topic, 1)
    system.ledger.recorder.insert_tracking(Tracking(name, 6))  # took offsets up to 6 of partition 1
    system.ledger.save(FeedRejection.reject(topic=topic, partition=1, offset=4, key=None, code="ID_CHECKSUM",
                                            message="bad", raw=b"x", received_at=datetime.now(timezone.utc)))
    ends = {topic: {0: (0, 0), 1: (0, 10), 2: (3, 5)}}  # (first kept, next to be written)
    rows = pipeline_status(system, lambda t: ends.get(t, {}))
    tax = {r.partition: r for r in rows_of(rows, "consumer") if r.source == topic}
    assert (tax[0].position, tax[0].end, tax[0].lag) == (None, None, 0)  # empty partition
    assert (tax[1].position, tax[1].end, tax[1].lag, tax[1].dead_letters) == (6, 9, 3, 1)
    assert (tax[2].position, tax[2].lag) == (None, 2)  # offsets 3 and 4 still to take
    assert {r.source for r in rows_of(rows, "consumer")} == {topic}  # the other topics have no partitions here


def test_the_command_prints_the_table_and_json(tmp_path, monkeypatch, capsys):
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "LEDGER_TOPIC_PREFIX"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGER_PERSISTENCE", "sqlite")
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGER_SQLITE_PATH", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("LEDGER_VIEWS_PATH", str(tmp_path / "views.sqlite"))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "publisher" in out and "views (log)" in out and "需要消息服务器" in out
    assert out.splitlines()[0].split()[:3] == ["环节", "名称", "来源"]
    assert main(["status", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "need the broker" in out and out.splitlines()[0].split()[:3] == ["part", "name", "source"]
    assert main(["status", "--json"]) == 0
    assert {r["part"] for r in json.loads(capsys.readouterr().out)} == {"publisher", "views (log)"}
