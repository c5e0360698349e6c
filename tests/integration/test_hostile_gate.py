"""Hostile and foreign Avro on the real broker, taken by the production tax consumer into PostgreSQL.

Issue 17, items 1, 7 and 10: a TaxPayment written by Apache Avro for Python with its own
fingerprint is recorded; hand-made records with over-long varints (10^30, 2^63) and a valid
long above the ceiling (2^63-1) are dead-lettered on ``tax.payments.v1.dlq`` with their code
(``AVRO_MALFORMED``, ``AMOUNT_TOO_LARGE``) and nothing of them is recorded.
"""
from __future__ import annotations

import pytest
from kafka import KafkaProducer

from consumers.feed_consumer import position_name
from events.codec import encode
from events.inbound import TAX_PAYMENT, tax_record_to_avro
from entrypoints.wiring import bootstrap, feed_consumer
from ledger.domain.errors import NotFound
from ledger.domain.feed_rejection import FeedRejection
from tests.integration.test_kafka_consumers import consume_until, group, read_topic, resident_id, settings
from tests.unit.test_hostile_gate import CEILING, MALFORMED, _payment, apache_encoded_payment

pytestmark = pytest.mark.integration

TAX = "tax.payments.v1"


@pytest.fixture()
def system(pg_env, kafka_bootstrap, prefix):
    s = bootstrap(settings(pg_env, kafka_bootstrap, prefix))
    yield s
    s.close()


def test_apache_avro_records_are_taken_and_hostile_ones_dead_lettered_on_the_real_broker(
        system, prefix, kafka_bootstrap, hostile):
    topic = prefix + TAX
    apache_person, huge_person = resident_id(201), resident_id(203)
    hostile_values = [
        *MALFORMED.values(),
        encode(TAX_PAYMENT, tax_record_to_avro(_payment(huge_person, "V-MAX", 2**63 - 1))),
        encode(TAX_PAYMENT, tax_record_to_avro(_payment(huge_person, "V-CEIL+1", CEILING + 1))),
    ]
    expected = ["AVRO_MALFORMED"] * len(MALFORMED) + ["AMOUNT_TOO_LARGE"] * 2
    values = [apache_encoded_payment(_payment(apache_person, "V-APACHE")), *hostile_values]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for i, value in enumerate(values):
            producer.send(topic, key=f"k{i}".encode(), value=value, partition=0)
        producer.flush()
    finally:
        producer.close()

    name = group()
    runner = feed_consumer(system, "tax", group=name)
    last = len(values) - 1
    consume_until([runner], lambda: system.ledger.position(position_name(name, topic, 0)) == last)

    ledger = system.ledger
    [paid] = ledger.find_person("RESIDENT_ID", apache_person).payments.values()
    assert (paid.voucher_no, paid.amount_fen) == ("V-APACHE", 40000)
    codes = [ledger.repository.get(FeedRejection.id_for(topic, 0, o)).code for o in range(1, len(values))]
    dlq = read_topic(kafka_bootstrap, topic + ".dlq", expect=len(hostile_values))
    huge_recorded = True
    try:
        ledger.find_person("RESIDENT_ID", huge_person)
    except NotFound:  # nothing of the refused records was recorded
        huge_recorded = False
    for code in codes:
        hostile.attempt(f"real Kafka tax record refused {code}", written=huge_recorded)
    assert codes == expected
    assert [dict(r.headers)["error.code"].decode() for r in dlq] == expected
    assert not huge_recorded
