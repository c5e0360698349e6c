"""Pure parsing and configuration of infra/: no broker, no database, no subprocess."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from infra import stack
from infra.stack import StackConfig, StackError
from infra.topics import Topic, TopicConfigError, load_topics, parse_topics, topic_names

DAY_MS = 24 * 3600 * 1000


# ------------------------------------------------------------------ the real topics.toml


def test_declared_topics():
    topics = {t.name: t for t in load_topics()}
    assert topics["ledger.events.v1"].partitions == 6
    assert topics["ledger.events.v1"].retention_ms == -1
    # the payments: an even split for 1, 2, 3 or 6 consumers in a group
    assert topics["tax.payments.v1"].partitions == 6
    for name in ("tax.payments.v1", "tax.statements.v1", "registry.status.v1",
                 "registry.residents.v1"):
        assert topics[name].partitions == (6 if name == "tax.payments.v1" else 3)
        assert topics[name].retention_ms in (-1, 30 * DAY_MS)
    for name in ("tax.payments.v1.dlq", "registry.status.v1.dlq", "registry.residents.v1.dlq",
                 "tax.statements.v1.dlq", "ledger.audit.digests.v1"):
        assert topics[name].retention_ms == -1
    assert "reconciliation.results.v1" in topics
    # The publisher's positions: only the newest value per key matters.
    assert topics["ledger.publisher.positions"].cleanup_policy == "compact"
    assert topics["ledger.publisher.positions"].partitions == 1
    assert all(t.cleanup_policy == "delete" and t.replication_factor == 1 for t in topics.values()
               if t.name != "ledger.publisher.positions")


def test_topic_configs_and_prefix():
    t = Topic("tax.payments.v1", 3, -1)
    assert t.configs() == {"retention.ms": "-1", "cleanup.policy": "delete"}
    assert t.with_prefix("t1a2b.").name == "t1a2b.tax.payments.v1"
    assert t.with_prefix("") is t
    assert topic_names("p.")[0] == "p.ledger.events.v1"
    with pytest.raises(TopicConfigError, match="prefix"):
        t.with_prefix("bad prefix/")


# ------------------------------------------------------------------ validation

GOOD = """
[defaults]
replication_factor = 1

[[topic]]
name = "a.v1"
partitions = 2
retention_ms = -1

[[topic]]
name = "a.v1.dlq"
partitions = 1
retention_ms = 86400000
cleanup_policy = "compact,delete"
"""


def test_parse_good_document():
    a, dlq = parse_topics(GOOD)
    assert (a.name, a.partitions, a.retention_ms, a.cleanup_policy) == ("a.v1", 2, -1, "delete")
    assert dlq.is_dead_letter and dlq.cleanup_policy == "compact,delete"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[topic]]\nname = "a"\npartitions = 0\nretention_ms = -1', "'partitions' must be >= 1"),
        ('[[topic]]\nname = "a"\npartitions = true\nretention_ms = -1', "must be an integer"),
        ('[[topic]]\nname = "a"\npartitions = "3"\nretention_ms = -1', "must be an integer"),
        ('[[topic]]\nname = "a"\npartitions = 1\nretention_ms = 0', "'retention_ms' must be -1"),
        ('[[topic]]\nname = "a"\npartitions = 1\nretention_ms = -2', "'retention_ms' must be -1"),
        ('[[topic]]\nname = "a"\npartitions = 1', "missing required key 'retention_ms'"),
        ('[[topic]]\nname = "a b"\npartitions = 1\nretention_ms = -1', "may only contain"),
        ('[[topic]]\nname = ".."\npartitions = 1\nretention_ms = -1', "not a valid topic name"),
        (f'[[topic]]\nname = "{"x" * 250}"\npartitions = 1\nretention_ms = -1', "longer than 249"),
        ('[[topic]]\nname = "a"\npartitions = 1\nretention_ms = -1\ncleanup_policy = "keep"',
         "'cleanup_policy' must be one of"),
        ('[[topic]]\nname = "a"\npartitions = 1\nretention_ms = -1\nretension_ms = 5',
         "unknown key"),
        ('[[topic]]\nname = "a"\npartitions = 1\nretention_ms = -1\n'
         '[[topic]]\nname = "a"\npartitions = 2\nretention_ms = -1', "declared twice"),
        ('[[topic]]\nname = "b.dlq"\npartitions = 1\nretention_ms = -1', "has no source topic"),
        ('[topics]\nx = 1', "unknown section"),
        ('[defaults]\nreplication_factor = 1', "no [[topic]] entries"),
        ('[defaults]\nfoo = 1\n[[topic]]\nname = "a"\npartitions = 1\nretention_ms = -1',
         "[defaults] has unknown key"),
        ("[[topic]\nname=", "not valid TOML"),
    ],
)
def test_invalid_documents_say_what_is_wrong(toml, message):
    with pytest.raises(TopicConfigError) as exc:
        parse_topics(toml, source="x.toml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("x.toml")


def test_missing_file(tmp_path):
    with pytest.raises(TopicConfigError, match="cannot read"):
        load_topics(tmp_path / "nope.toml")


# ------------------------------------------------------------------ StackConfig


def test_config_defaults_and_env(tmp_path):
    cfg = StackConfig.from_env({})
    assert (cfg.kafka_port, cfg.controller_port, cfg.pg_port) == (19092, 19093, 55432)
    assert cfg.state_dir == Path(stack.REPO_ROOT) / "var"
    assert cfg.timeout == 120 and cfg.kafka_heap == "512m"
    cfg = StackConfig.from_env({"LEDGER_STATE_DIR": str(tmp_path), "LEDGER_KAFKA_PORT": "29092",
                                "LEDGER_KAFKA_CONTROLLER_PORT": "29093", "LEDGER_PG_PORT": "25432",
                                "LEDGER_STACK_TIMEOUT": "30", "LEDGER_KAFKA_HEAP": "1g"})
    assert cfg.state_dir == tmp_path and cfg.kafka_bootstrap == "127.0.0.1:29092"
    assert (cfg.controller_port, cfg.pg_port, cfg.timeout, cfg.kafka_heap) == (29093, 25432, 30, "1g")
    assert cfg.kafka_data == tmp_path / "kafka" / "data"
    assert stack.pg_root(cfg) == tmp_path / "postgres"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEDGER_PG_PORT": "abc"}, "is not a port number"),
        ({"LEDGER_PG_PORT": "70000"}, "is not a TCP port"),
        ({"LEDGER_PG_PORT": "19092"}, "ports must differ"),
        ({"LEDGER_STACK_TIMEOUT": "soon"}, "is not a number of seconds"),
        ({"LEDGER_STACK_TIMEOUT": "0"}, "must be positive"),
        ({"LEDGER_KAFKA_HEAP": "lots"}, "is not a JVM size"),
    ],
)
def test_bad_config_is_a_stack_error(env, message):
    with pytest.raises(StackError, match=message) as exc:
        StackConfig.from_env(env)
    assert exc.value.hint


def test_settings_and_exports(tmp_path):
    cfg = StackConfig(state_dir=tmp_path, pg_port=25432)
    with pytest.raises(StackError, match="never started"):
        stack.settings(cfg)
    secrets = stack._ensure_secrets(cfg)
    assert stack._ensure_secrets(cfg) == secrets  # generated once
    assert oct((tmp_path / "secrets.json").stat().st_mode & 0o777) == "0o600"
    s = stack.settings(cfg)
    assert s["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert s["DATABASE_URL"] == f"postgresql://ledger:{secrets['ledger_password']}@127.0.0.1:25432/ledger"
    assert (s["POSTGRES_HOST"], s["POSTGRES_PORT"], s["POSTGRES_DBNAME"], s["POSTGRES_USER"]) == (
        "127.0.0.1", "25432", "ledger", "ledger")
    exports = stack._exports({**s, "ODD": "a b'c"})
    parsed = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
    assert shlex.split(parsed["ODD"]) == ["a b'c"]
    assert parsed["POSTGRES_PASSWORD"] == secrets["ledger_password"]


def test_cluster_ids_look_like_kafka_uuids():
    for _ in range(50):
        cid = stack._new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")


def test_status_line_wording():
    st = stack.ServiceStatus("kafka", stack.CRASHED, "127.0.0.1:1", pid=42, detail="gone")
    assert st.line() == "kafka: crashed (pid 42) at 127.0.0.1:1: gone"
    assert not st.healthy and stack.ServiceStatus("k", stack.UP, "a").healthy
    assert stack.UNHEALTHY == "starting/unhealthy"
