"""The secured broker of infra/secure.py (SASL/SCRAM-SHA-512 + ACLs), on a SEPARATE instance
(own temp state dir, own free ports; the session's stack is not touched): the tax integration
may produce only to its inbound topics, the ledger reads them in its own consumer groups and
writes its own topics, a wrong password does not get in. Stopped and wiped at the end."""
from __future__ import annotations

import logging
import socket
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (GroupAuthorizationFailedError, KafkaTimeoutError,
                          TopicAuthorizationFailedError)

from infra import secure
from infra.stack import DOWN, UP, StackConfig

pytestmark = pytest.mark.integration

PAYMENTS = "tax.payments.v1"
EVENTS = "ledger.events.v1"


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> StackConfig:
    kafka_port, controller_port = _free_ports(2)
    cfg = secure.secure_config(state_dir=tmp_path_factory.mktemp("secure-kafka"),
                               kafka_port=kafka_port, controller_port=controller_port, timeout=90)
    try:
        secure.up(cfg)
        yield cfg
    finally:
        secure.clean(cfg)
        assert secure.status(cfg).state == DOWN
        assert not cfg.kafka_dir.exists() and not secure.users_file(cfg).exists()


def _producer(cfg: StackConfig, user: str) -> KafkaProducer:
    # Idempotent like the ledger's own publisher: WRITE on a topic implies IDEMPOTENT_WRITE.
    return KafkaProducer(acks="all", enable_idempotence=True, max_block_ms=15000,
                         **secure.client_config(cfg, user))


def _read_marker(cfg: StackConfig, user: str, topic: str, marker: bytes, group: str) -> bool:
    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20000,
                             **secure.client_config(cfg, user))
    try:
        return any(record.value == marker for record in consumer)
    finally:
        consumer.close()


def test_broker_is_secured(broker):
    assert secure.status(broker).state == UP
    props = broker.kafka_properties.read_text()
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:" in props
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in props
    assert "\nallow.everyone.if.no.acl.found=false" in props
    assert "\nsasl.enabled.mechanisms=SCRAM-SHA-512" in props
    assert "\nlisteners=PLAINTEXT" not in props  # the base listener line was replaced
    assert broker.kafka_properties.stat().st_mode & 0o077 == 0  # holds the admin password
    assert secure.users_file(broker).stat().st_mode & 0o077 == 0
    assert set(secure.read_users(broker)) == {"admin", "tax-integration", "ledger"}


def test_tax_integration_produces_to_its_inbound_topic_and_ledger_consumes_it(broker):
    marker = f"payment-{uuid.uuid4().hex}".encode()
    producer = _producer(broker, "tax-integration")
    try:
        meta = producer.send(PAYMENTS, key=b"p1", value=marker).get(timeout=30)
        assert meta.topic == PAYMENTS
        producer.send("tax.statements.v1", value=b"statement").get(timeout=30)
    finally:
        producer.close()
    assert _read_marker(broker, "ledger", PAYMENTS, marker, group="ledger-tax-payments")


@pytest.mark.parametrize("topic", [EVENTS, "registry.status.v1", "tax.payments.v1.dlq"])
def test_tax_integration_cannot_produce_elsewhere(broker, topic):
    producer = _producer(broker, "tax-integration")
    try:
        with pytest.raises(TopicAuthorizationFailedError) as exc:
            producer.send(topic, value=b"forged").get(timeout=30)
        assert topic in str(exc.value)
    finally:
        producer.close()


def test_tax_integration_cannot_read_its_topic(broker):
    consumer = KafkaConsumer(enable_auto_commit=False, **secure.client_config(broker, "tax-integration"))
    try:
        tp = TopicPartition(PAYMENTS, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        with pytest.raises(TopicAuthorizationFailedError, match=PAYMENTS):
            for _ in range(10):  # the error surfaces on the first fetch
                consumer.poll(timeout_ms=2000)
    finally:
        consumer.close()


def _failed_logins(cfg: StackConfig) -> list[str]:
    log = cfg.kafka_logs / "server.log"
    return [line for line in log.read_text(errors="replace").splitlines()
            if "Failed authentication with /127.0.0.1" in line]


def test_wrong_password_fails_authentication(broker, caplog):
    caplog.set_level(logging.ERROR, logger="kafka")
    before = len(_failed_logins(broker))
    bad = secure.client_config(broker, "tax-integration", password="not-the-password")
    # kafka-python gives up bootstrapping with a time-out (it logs SaslAuthenticationFailedError
    # when it reads the broker's answer before the broker closes the socket, which is racy);
    # the broker logs every rejected SCRAM login.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(bootstrap_timeout_ms=4000, **bad)
    rejected = _failed_logins(broker)[before:]
    assert rejected, "the broker logged no failed authentication"
    assert all("invalid credentials with SASL mechanism SCRAM-SHA-512" in line for line in rejected)
    client_side = [r.getMessage() for r in caplog.records if "SaslAuthenticationFailedError" in r.getMessage()]
    assert all("invalid credentials" in m for m in client_side)
    # The same user with its real password gets in (so it was the password, nothing else).
    admin = KafkaAdminClient(bootstrap_timeout_ms=10000, **secure.client_config(broker, "tax-integration"))
    admin.close()


def test_ledger_reads_in_its_groups_only_and_writes_its_own_topics(broker):
    marker = f"event-{uuid.uuid4().hex}".encode()
    producer = _producer(broker, "ledger")
    try:
        producer.send(EVENTS, key=b"person-1", value=marker).get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):  # no forged payments
            producer.send(PAYMENTS, value=b"forged").get(timeout=30)
    finally:
        producer.close()
    assert _read_marker(broker, "ledger", EVENTS, marker, group="ledger-projections")

    consumer = KafkaConsumer(PAYMENTS, group_id="someone-else", consumer_timeout_ms=10000,
                             **secure.client_config(broker, "ledger"))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=10000)
    finally:
        consumer.close()
