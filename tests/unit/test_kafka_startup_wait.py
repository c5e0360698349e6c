"""A process started while the broker is down waits for it instead of exiting (consumers.kafka_io)."""
from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError

from consumers.kafka_io import until_broker_answers


def flaky(failures: int):
    calls = []

    def connect():
        calls.append(1)
        if len(calls) <= failures:
            raise KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:1")
        return "client"
    return connect, calls


def test_waits_with_growing_pauses_until_the_broker_answers():
    connect, calls = flaky(4)
    pauses: list[float] = []
    assert until_broker_answers(connect, what="test", wait=60, sleep=pauses.append) == "client"
    assert len(calls) == 5
    assert pauses == [0.5, 1.0, 2.0, 4.0]


def test_gives_up_with_the_brokers_error_after_the_wait():
    connect, calls = flaky(10**6)
    with pytest.raises(KafkaTimeoutError):
        until_broker_answers(connect, what="test", wait=0.0, sleep=lambda s: None)
    assert len(calls) == 1


def test_other_errors_are_not_retried():
    def connect():
        raise ValueError("bad configuration")
    with pytest.raises(ValueError):
        until_broker_answers(connect, what="test", wait=60, sleep=lambda s: pytest.fail("slept"))
