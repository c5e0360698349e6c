"""The broker is a real Apache Kafka: kafka-python and Kafka's own Java console tools talk to
it through the wire protocol, both ways; the declared topics exist as declared."""
from __future__ import annotations

import subprocess
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from infra.stack import kafka_tool_command
from infra.topics import Topic, ensure_topics, load_topics

pytestmark = pytest.mark.integration

CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"


def test_kafka_python_record_is_read_by_kafkas_console_consumer(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}ledger.events.v1"
    key, value = "person-1", f"enrolled-{uuid.uuid4().hex}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(topic, key=key.encode(), value=value.encode(), partition=2).get(timeout=30)
    finally:
        producer.close()

    proc = subprocess.run(
        kafka_tool_command(CONSOLE_CONSUMER, "--bootstrap-server", kafka_bootstrap,
                           "--topic", topic, "--partition", "2", "--offset", "earliest",
                           "--max-messages", "1", "--timeout-ms", "30000",
                           "--property", "print.key=true", "--property", "key.separator=|"),
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{key}|{value}", proc.stderr


def test_kafkas_console_producer_record_is_read_by_kafka_python(kafka_bootstrap, topic_prefix):
    topic = f"{topic_prefix}tax.payments.v1"
    value = f"payment-{uuid.uuid4().hex}"
    proc = subprocess.run(
        kafka_tool_command(CONSOLE_PRODUCER, "--bootstrap-server", kafka_bootstrap,
                           "--topic", topic, "--sync",
                           "--property", "parse.key=true", "--property", "key.separator=|"),
        input=f"voucher-7|{value}\n", capture_output=True, text=True, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=f"test-{uuid.uuid4().hex[:8]}", consumer_timeout_ms=30000)
    try:
        received = next((r for r in consumer if r.value.decode() == value), None)
    finally:
        consumer.close()
    assert received is not None, "record from the console producer not received"
    assert received.key == b"voucher-7"


@pytest.mark.parametrize("prefixed", [False, True], ids=["stack", "prefixed"])
def test_declared_topics_exist_with_declared_partitions_and_retention(kafka_bootstrap, topic_prefix,
                                                                      prefixed):
    prefix = topic_prefix if prefixed else ""
    declared = {t.with_prefix(prefix).name: t for t in load_topics()}
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: t for t in admin.describe_topics(list(declared))}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in declared])["topic"]
    finally:
        admin.close()
    for name, topic in declared.items():
        assert described[name]["error_code"] == 0, name
        assert len(described[name]["partitions"]) == topic.partitions, name
        assert configs[name]["retention.ms"]["value"] == str(topic.retention_ms), name
        assert configs[name]["cleanup.policy"]["value"] == topic.cleanup_policy, name
    assert declared[f"{prefix}ledger.events.v1"].partitions == 6
    assert declared[f"{prefix}ledger.events.v1"].retention_ms == -1


def test_ensure_topics_adds_the_partitions_a_topic_lacks_and_never_removes_any(kafka_bootstrap):
    name = f"grow{uuid.uuid4().hex[:8]}.t.v1"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)

    def partitions() -> int:
        return len(admin.describe_topics([name])[0]["partitions"])

    try:
        assert ensure_topics(kafka_bootstrap, topics=[Topic(name, 3, -1)]) == [name]
        assert partitions() == 3
        assert ensure_topics(kafka_bootstrap, topics=[Topic(name, 6, -1)]) == []  # not created: grown
        assert partitions() == 6
        ensure_topics(kafka_bootstrap, topics=[Topic(name, 2, -1)])  # Kafka cannot shrink a topic
        assert partitions() == 6
    finally:
        admin.delete_topics([name])
        admin.close()
