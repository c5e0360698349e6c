"""The arithmetic of benchmarks/bench_freshness.py on fabricated timelines: no servers.

The benchmark maps each payment to the notification id of its event, reads the entitlement
view's stored position every few ms, and derives delays, percentiles and the burst's drain
time from those polls. Here the polls and send times are made up so every figure can be
worked out by hand.
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_freshness as bf  # noqa: E402


def test_percentile_interpolates_between_the_closest_ranks():
    assert bf.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert bf.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == pytest.approx(4.8)
    assert bf.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert bf.percentile([7.0], 0.95) == 7.0
    assert math.isnan(bf.percentile([], 0.5))


def test_first_polls_finds_the_poll_that_reached_each_target():
    positions = [0, 10, 10, 25, 40]
    assert bf.first_polls([5, 10, 11, 40, 41, None], positions) == [1, 1, 3, 4, None, None]


def test_a_position_read_lower_than_before_does_not_hide_what_was_reached():
    # A stored position never goes back; should a poll read less, the earlier poll still counts.
    assert bf.first_polls([18, 25], [0, 20, 15, 30]) == [1, 3]


# A quick-mode-like run, scaled down: 10 steady payments 0.1 s apart, then a burst of 5.
STEADY_SENT = [round(0.1 * k, 2) for k in range(10)]
STEADY_IDS = list(range(101, 111))
BURST_SENT = [2.0, 2.01, 2.02, 2.03, 2.04]
BURST_IDS = [112, 114, 116, 118, 120]  # each payment's voucher event in between
POLLS = [(0.25, 100), (0.55, 103), (0.85, 103), (1.15, 108), (1.45, 110),
         (2.5, 110), (3.0, 116), (3.6, 119), (4.1, 125)]


def test_steady_delays_and_percentiles_from_a_fabricated_timeline():
    got = bf.delays(STEADY_SENT, STEADY_IDS, POLLS)
    # 101-103 seen at 0.55, 104-108 at 1.15, 109-110 at 1.45.
    want = [0.55, 0.45, 0.35, 0.85, 0.75, 0.65, 0.55, 0.45, 0.65, 0.55]
    assert got == pytest.approx(want)
    assert bf.percentile(got, 0.5) == pytest.approx(0.55)
    assert bf.percentile(got, 0.95) == pytest.approx(0.75 + 0.55 * (0.85 - 0.75))


def test_burst_drain_counts_from_the_last_send_to_the_poll_that_saw_every_payment():
    assert bf.drain_seconds(BURST_SENT[-1], BURST_IDS, POLLS) == pytest.approx(4.1 - 2.04)
    assert bf.delays(BURST_SENT, BURST_IDS, POLLS) == pytest.approx([1.0, 0.99, 0.98, 1.57, 2.06])


def test_payments_no_poll_saw_have_no_delay_and_no_drain():
    assert bf.delays([0.0, 0.1], [None, 126], POLLS) == [None, None]
    assert bf.drain_seconds(2.04, [112, 126], POLLS) is None
    assert bf.drain_seconds(2.04, [], POLLS) is None


def test_the_cross_check_names_every_person_whose_row_and_position_disagree():
    positions = {"a": 3, "b": 5, "c": None, "d": 7}
    rows = {"a": 3, "b": 4, "c": None}
    assert bf.disagreements(positions, rows) == [("b", 5, 4), ("d", 7, None)]
    assert bf.disagreements({"a": 1}, {"a": 1}) == []


def test_follower_rate_sums_its_catch_up_lines_only():
    lines = [
        json.dumps({"event": "views_caught_up", "events": 1200, "seconds": 0.5}),
        "not json, a traceback line mentioning \"views_caught_up\"",
        json.dumps({"event": "views_quarantine", "events": 999, "seconds": 9.0}),
        json.dumps({"event": "views_caught_up", "events": 800, "seconds": 0.3}),
    ]
    events, seconds = bf.follower_rate("\n".join(lines))
    assert events == 2000
    assert seconds == pytest.approx(0.8)
    assert bf.follower_rate("") == (0, 0.0)


def test_the_last_line_has_the_issue_s_shape():
    line = bf.last_line(0.634, 1.666, 5.641, 389.4)
    assert line == "freshness steady_p50_s=0.63 steady_p95_s=1.67 burst_drain_s=5.64 incremental_ev_s=389"
    assert bf.last_line(None, float("nan"), None, None) == \
        "freshness steady_p50_s=nan steady_p95_s=nan burst_drain_s=nan incremental_ev_s=nan"
    assert re.fullmatch(r"freshness steady_p50_s=\S+ steady_p95_s=\S+ burst_drain_s=\S+ incremental_ev_s=\S+", line)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.flushed = False

    def send(self, topic: str, *, key: bytes, value: bytes) -> None:
        assert not self.flushed
        self.sent.append((topic, key, value))

    def flush(self, timeout: float) -> None:
        self.flushed = True


def test_send_paced_keeps_to_the_rate_and_notes_each_send_time():
    producer, sent = FakeProducer(), []
    records = [(b"k%d" % i, b"v%d" % i) for i in range(20)]
    started = time.time()
    bf.send_paced(producer, "t", records, 200.0, sent)
    assert [r[1:] for r in producer.sent] == records and producer.flushed
    assert len(sent) == 20 and sent == sorted(sent)
    # Never ahead of the schedule: the 20th payment goes no earlier than 19/200 s after the start.
    assert sent[-1] - started >= 19 / 200 - 1e-3
    for k, at in enumerate(sent):
        assert at >= started + k / 200 - 1e-3


def test_send_paced_without_a_rate_sends_everything_at_once():
    producer, sent = FakeProducer(), []
    bf.send_paced(producer, "t", [(b"k", b"v")] * 50, None, sent)
    assert len(producer.sent) == 50 and len(sent) == 50 and producer.flushed


class FakeConnection:
    """Answers the three statements of ``Watch.tick`` from fixed rows."""

    def __init__(self, view_rows, tracking, log_end) -> None:
        self.view_rows, self.tracking, self.log_end = view_rows, tracking, log_end
        self.asked: list[tuple[str, tuple]] = []

    def execute(self, statement, params=()):
        self.asked.append((statement, params))
        rows = (self.view_rows if "view_positions" in statement else
                self.tracking if "ledger_tracking" in statement else [(self.log_end,)])
        return type("Cursor", (), {"fetchall": lambda _: list(rows), "fetchone": lambda _: rows[0]})()


def test_a_poll_counts_consumed_payments_from_the_partitions_positions_only():
    topic, events = "p.tax.payments.v1", "p.ledger.events.v1"
    tracking = [(f"{bf.GROUP}:{topic}:0", 9), (f"{bf.GROUP}:{topic}:1", 4),
                # Same prefix, not a position of a partition: counting it counted payments twice.
                (f"{bf.GROUP}:{topic}:0:dead-lettered", 9),
                (f"other-group:{topic}:2", 99), (f"publisher:{events}", 321)]
    view_rows = [("v", None, 300, 1000.5), ("r", "person-a", None, None)]
    watch = bf.Watch(FakeConnection(view_rows, tracking, 330), topic, events, 0.02)
    watch.waiting = {"person-a", "person-b"}
    sample = watch.tick()
    assert (sample.consumed, sample.published, sample.log_end) == (10 + 5, 321, 330)
    assert (watch.polls[-1].position, watch.polls[-1].written_at) == (300, 1000.5)
    assert watch.row_polls == {"person-a": 0} and watch.waiting == {"person-b"}
    assert watch.conn.asked[0][1] == (["person-a", "person-b"],)
    assert watch.tick(with_pipeline=False) is None and len(watch.polls) == 2 and len(watch.pipeline) == 1
