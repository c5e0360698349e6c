"""Cluster mode's configuration, without servers: ports, settings, topics' replication, multi-host URLs."""
from __future__ import annotations

import json
import shlex
import string

import pytest

from infra import cluster, stack
from infra.stack import StackConfig, StackError
from infra.topics import ClusterReplication, TopicConfigError, load_cluster_replication, load_topics, parse_topics
from infra.settings import is_multi_host, postgres_from_env, prefer_read_write


def _cfg(tmp_path):
    return StackConfig.from_env({}, state_dir=tmp_path / "state")


def test_cluster_mode_is_asked_for_by_brokers_3_only():
    assert cluster.wanted({}) is False
    assert cluster.wanted({"LEDGER_KAFKA_BROKERS": "1"}) is False
    assert cluster.wanted({"LEDGER_KAFKA_BROKERS": "3"}) is True
    with pytest.raises(StackError, match="1 or 3"):
        cluster.wanted({"LEDGER_KAFKA_BROKERS": "2"})


def test_ports_follow_the_first_one_and_collide_with_nothing_of_the_single_node(tmp_path):
    cfg = _cfg(tmp_path)
    st = cluster.load_state(cfg, {"LEDGER_CLUSTER_KAFKA_PORT": "29100", "LEDGER_CLUSTER_PG_PORT": "56100"})
    brokers = [st.broker_port(n) for n in (1, 2, 3)]
    controllers = [st.controller_port(n) for n in (1, 2, 3)]
    pgs = [st.pg_node_port(n) for n in cluster.PG_NODES]
    assert brokers == [29100, 29101, 29102] and controllers == [29103, 29104, 29105] and pgs == [56100, 56101]
    default = cluster.load_state(cfg, {})
    used = {default.broker_port(n) for n in (1, 2, 3)} | {default.controller_port(n) for n in (1, 2, 3)}
    used |= {default.pg_node_port(n) for n in cluster.PG_NODES}
    assert len(used) == 8
    assert not used & {stack.DEFAULT_KAFKA_PORT, stack.DEFAULT_CONTROLLER_PORT, stack.DEFAULT_PG_PORT}


def test_the_state_file_keeps_the_ports_and_the_primary(tmp_path):
    cfg = _cfg(tmp_path)
    st = cluster.load_state(cfg, {"LEDGER_CLUSTER_KAFKA_PORT": "29100"})
    st.primary = "pg-b"
    cluster.save_state(cfg, st)
    again = cluster.load_state(cfg, {"LEDGER_CLUSTER_KAFKA_PORT": "1111"})  # the recorded ports win
    assert (again.kafka_port, again.primary, again.standby) == (29100, "pg-b", "pg-a")
    assert cluster.is_cluster(cfg)


def test_every_node_has_its_own_dir_ports_and_a_small_heap(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGER_KAFKA_HEAP", raising=False)
    cfg = _cfg(tmp_path)
    st = cluster.load_state(cfg, {})
    nodes = [cluster.kafka_node(cfg, st, n) for n in (1, 2, 3)]
    assert len({n.kafka_data for n in nodes}) == 3
    assert len({n.kafka_port for n in nodes}) == 3
    assert {n.kafka_heap for n in nodes} == {cluster.DEFAULT_CLUSTER_HEAP}
    a, b = (cluster.pg_node(cfg, st, n) for n in cluster.PG_NODES)
    assert stack.pg_root(a) != stack.pg_root(b) and a.pg_port != b.pg_port


def test_broker_config_names_three_voters_and_replication(tmp_path):
    cfg = _cfg(tmp_path)
    st = cluster.load_state(cfg, {"LEDGER_CLUSTER_KAFKA_PORT": "29100"})
    node = cluster.kafka_node(cfg, st, 2)
    cluster._kafka_write_config(node, 2, st, cfg)
    props = stack._read_properties(node.kafka_properties)
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29103,2@127.0.0.1:29104,3@127.0.0.1:29105"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29101,CONTROLLER://127.0.0.1:29104"
    assert (props["min.insync.replicas"], props["default.replication.factor"]) == ("2", "3")
    assert props["offsets.topic.replication.factor"] == "3"
    assert props["unclean.leader.election.enable"] == "false"
    assert "$" not in node.kafka_properties.read_text()


def test_settings_give_all_brokers_and_both_postgres_nodes(tmp_path):
    cfg = _cfg(tmp_path)
    st = cluster.load_state(cfg, {"LEDGER_CLUSTER_KAFKA_PORT": "29100", "LEDGER_CLUSTER_PG_PORT": "56100"})
    cluster.save_state(cfg, st)
    stack._write_private(cfg.secrets_file, json.dumps({"postgres_password": "su", "ledger_password": "p w"}))
    s = cluster.settings(cfg)
    assert s["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:29100,127.0.0.1:29101,127.0.0.1:29102"
    assert (s["POSTGRES_HOST"], s["POSTGRES_PORT"]) == ("127.0.0.1,127.0.0.1", "56100,56101")
    assert s["DATABASE_URL"].endswith("@127.0.0.1:56100,127.0.0.1:56101/ledger?target_session_attrs=read-write")
    assert s["PGTARGETSESSIONATTRS"] == "read-write"
    exported = dict(line.split(" ", 1)[1].split("=", 1) for line in stack._exports(s).splitlines())
    assert shlex.split(exported["POSTGRES_PASSWORD"]) == ["p w"]
    # The ledger's own settings read back the same pair from the URL alone.
    pg = postgres_from_env({"DATABASE_URL": s["DATABASE_URL"]})
    assert (pg["POSTGRES_HOST"], pg["POSTGRES_PORT"], pg["POSTGRES_PASSWORD"]) == (
        "127.0.0.1,127.0.0.1", "56100,56101", "p w")


def test_single_host_url_still_parses_as_before():
    pg = postgres_from_env({"DATABASE_URL": "postgresql://led%40ger:pa%3Ass@db.example:6543/ledger"})
    assert pg == {"POSTGRES_HOST": "db.example", "POSTGRES_PORT": "6543", "POSTGRES_DBNAME": "ledger",
                  "POSTGRES_USER": "led@ger", "POSTGRES_PASSWORD": "pa:ss"}
    assert postgres_from_env({"DATABASE_URL": "postgresql://u:p@h/d"})["POSTGRES_PORT"] == "5432"
    assert not is_multi_host(pg)


def test_read_write_is_asked_for_only_with_several_hosts_and_never_overrides():
    env: dict[str, str] = {}
    prefer_read_write({"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432"}, env)
    assert env == {}
    prefer_read_write({"POSTGRES_HOST": "a,b", "POSTGRES_PORT": "1,2"}, env)
    assert env == {"PGTARGETSESSIONATTRS": "read-write"}
    env = {"PGTARGETSESSIONATTRS": "primary"}
    prefer_read_write({"POSTGRES_HOST": "a,b"}, env)
    assert env["PGTARGETSESSIONATTRS"] == "primary"


def test_topics_toml_declares_the_cluster_replication():
    rep = load_cluster_replication()
    assert rep == ClusterReplication(replication_factor=3, min_insync_replicas=2)
    topics = [rep.apply(t) for t in load_topics()]
    assert {t.replication_factor for t in topics} == {3}
    assert [t.partitions for t in topics] == [t.partitions for t in load_topics()]  # nothing else changes
    assert rep.configs() == {"min.insync.replicas": "2"}
    assert {t.replication_factor for t in load_topics()} == {1}  # the single node's default is unchanged


@pytest.mark.parametrize("section, message", [
    ("[cluster]\nreplication_factor = 3\nmin_insync_replicas = 4", "min_insync_replicas <= replication_factor"),
    ("[cluster]\nreplicas = 3", "unknown key"),
    ("[cluster]\nreplication_factor = true", "must be an integer"),
])
def test_a_wrong_cluster_section_says_what_is_wrong(section, message):
    doc = section + '\n[[topic]]\nname = "a.v1"\npartitions = 1\nretention_ms = -1\n'
    with pytest.raises(TopicConfigError, match=message):
        parse_topics(doc)


def test_the_template_has_only_fields_the_script_fills():
    fields = {m.group("braced") for m in string.Template.pattern.finditer(cluster.CLUSTER_TEMPLATE.read_text())
              if m.group("braced")}
    assert fields == {"node_id", "voters", "host", "kafka_port", "controller_port", "log_dirs"}


def test_producers_wait_for_all_in_sync_replicas(monkeypatch):
    from consumers import kafka_io

    seen = {}

    class FakeProducer:
        def __init__(self, **config):
            seen.update(config)

    monkeypatch.setattr(kafka_io, "KafkaProducer", FakeProducer)
    kafka_io.make_producer("a:1,b:2,c:3")
    assert (seen["acks"], seen["enable_idempotence"], seen["bootstrap_servers"]) == ("all", True, "a:1,b:2,c:3")
