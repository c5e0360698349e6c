"""A clumsy operator against cluster mode (no servers): wrong broker counts, a damaged state file, a
failover asked of a single server, a cluster started over a single-node state dir, a wrong [cluster]
section. Each is refused with one line saying what to do, starts nothing and writes nothing."""
from __future__ import annotations

import json

import pytest

from infra import cluster, stack
from infra.command import main
from infra.stack import StackConfig, StackError
from infra.topics import TopicConfigError, parse_topics


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_a_broker_count_the_stack_cannot_run_is_refused(hostile, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LEDGER_KAFKA_BROKERS", "2")
    code = main(["up"])
    err = capsys.readouterr().err
    hostile.attempt("LEDGER_KAFKA_BROKERS=2", status=None, crashed=code not in (0, 2),
                    written=bool(_files(tmp_path / "state")))
    assert code == 2 and "1 or 3" in err and err.count("\n") == 1


def test_a_damaged_state_file_is_reported_not_guessed(hostile, tmp_path):
    cfg = StackConfig.from_env({}, state_dir=tmp_path / "state")
    cluster.cluster_dir(cfg).mkdir(parents=True)
    cluster.state_file(cfg).write_text('{"kafka_port": ')
    before = cluster.state_file(cfg).read_text()
    with pytest.raises(StackError, match="unreadable") as info:
        cluster.load_state(cfg)
    hostile.attempt("damaged cluster.json", crashed=False, written=cluster.state_file(cfg).read_text() != before)
    assert "down --clean" in info.value.hint


def test_failover_of_a_single_server_is_refused(hostile, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LEDGER_KAFKA_BROKERS", raising=False)
    code = main(["failover"])
    err = capsys.readouterr().err
    hostile.attempt("failover without a standby", crashed=code not in (0, 2), written=bool(_files(tmp_path / "state")))
    assert code == 2 and "nothing to fail over to" in err and "up --cluster" in err


def test_a_cluster_over_a_single_node_state_dir_is_refused(hostile, tmp_path, monkeypatch):
    cfg = StackConfig.from_env({}, state_dir=tmp_path / "state")
    (cfg.state_dir / "postgres" / "data").mkdir(parents=True)  # a single-node stack lives here
    (cfg.state_dir / "secrets.json").write_text(json.dumps({"postgres_password": "s3cret-su",
                                                            "ledger_password": "s3cret-l"}))
    before = _files(cfg.state_dir)
    with pytest.raises(StackError, match="single-node stack") as info:
        cluster.up(cfg, timeout=5)
    after = _files(cfg.state_dir) - {"stack.lock"}
    hostile.attempt("up --cluster over a single-node state dir", written=after != before,
                    leaked="s3cret" in str(info.value))
    assert "LEDGER_STATE_DIR" in info.value.hint


@pytest.mark.parametrize("section", ["[cluster]\nreplication_factor = 2\nmin_insync_replicas = 3",
                                     "[cluster]\nmin_insync_replicas = 0", "cluster = 3"])
def test_a_replication_that_cannot_hold_is_refused(hostile, section):
    doc = section + '\n[[topic]]\nname = "a.v1"\npartitions = 1\nretention_ms = -1\n'
    with pytest.raises(TopicConfigError, match=r"\[cluster\]"):
        parse_topics(doc)
    hostile.attempt(f"topics.toml {section.splitlines()[-1]!r}")


def test_status_of_nothing_says_down_and_starts_nothing(hostile, tmp_path):
    cfg = StackConfig.from_env({}, state_dir=tmp_path / "state")
    cluster.cluster_dir(cfg).mkdir(parents=True)
    cluster.save_state(cfg, cluster.ClusterState())
    before = _files(cfg.state_dir)
    report = cluster.status(cfg)
    hostile.attempt("status of a cluster never started", written=_files(cfg.state_dir) != before)
    assert [s.state for s in report.services] == [stack.DOWN] * 5 and not report.healthy
