"""The ledger's Kafka topics, declared in ``infra/topics.toml``, and their creation.

>>> [t.name for t in load_topics()][:1]
['ledger.events.v1']

``ensure_topics(bootstrap, prefix="")`` creates every declared topic that does not exist yet
and adds partitions to an existing one that has fewer than declared (nothing else about an
existing topic is changed). Tests pass a unique prefix such as ``"t1a2b3c4."`` to get their
own copy of the whole set.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

TOPICS_FILE = Path(__file__).with_name("topics.toml")

#: Kafka's own limit on topic names.
MAX_NAME_LENGTH = 249
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete"})
_TOPIC_KEYS = frozenset(
    {"name", "partitions", "retention_ms", "cleanup_policy", "replication_factor", "description"}
)
_DEFAULT_KEYS = frozenset({"replication_factor", "cleanup_policy", "retention_ms"})
#: Kafka's error code for "topic already exists" (TopicAlreadyExistsError).
_TOPIC_ALREADY_EXISTS = 36


class TopicConfigError(ValueError):
    """topics.toml (or a prefix) is invalid; the message says which entry and why."""


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int  # -1 = forever
    cleanup_policy: str = "delete"
    replication_factor: int = 1
    description: str = field(default="", compare=False)

    def configs(self) -> dict[str, str]:
        """Topic-level Kafka configs for CreateTopics."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}

    def with_prefix(self, prefix: str) -> "Topic":
        if not prefix:
            return self
        validate_prefix(prefix)
        name = prefix + self.name
        _check_name(name, where=f"topic {self.name!r} with prefix {prefix!r}")
        return Topic(name, self.partitions, self.retention_ms, self.cleanup_policy,
                     self.replication_factor, self.description)

    @property
    def is_dead_letter(self) -> bool:
        return self.name.endswith(".dlq")


def _check_name(name: Any, *, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise TopicConfigError(f"{where}: 'name' must be a non-empty string")
    if name in {".", ".."}:
        raise TopicConfigError(f"{where}: {name!r} is not a valid topic name")
    if len(name) > MAX_NAME_LENGTH:
        raise TopicConfigError(f"{where}: name is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME.match(name):
        raise TopicConfigError(
            f"{where}: name {name!r} may only contain letters, digits, '.', '_' and '-'"
        )


def validate_prefix(prefix: str) -> None:
    """A prefix must itself be made of legal topic-name characters."""
    if not isinstance(prefix, str):
        raise TopicConfigError(f"topic prefix must be a string, not {type(prefix).__name__}")
    if prefix and not _NAME.match(prefix):
        raise TopicConfigError(
            f"topic prefix {prefix!r} may only contain letters, digits, '.', '_' and '-'"
        )


def _int(value: Any, *, key: str, where: str) -> int:
    # bool is an int in Python; `partitions = true` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TopicConfigError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


def parse_topics(data: dict[str, Any] | str, *, source: str = "topics.toml") -> list[Topic]:
    """Validate a parsed (or raw TOML) topics document and return its topics, in file order."""
    if isinstance(data, str):
        try:
            data = tomllib.loads(data)
        except tomllib.TOMLDecodeError as exc:
            raise TopicConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown_sections = set(data) - {"defaults", "topic", "cluster"}
    if unknown_sections:
        raise TopicConfigError(f"{source}: unknown section(s) {sorted(unknown_sections)}; "
                               "expected [defaults], [cluster] and [[topic]]")
    parse_cluster(data, source=source)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise TopicConfigError(f"{source}: [defaults] must be a table")
    unknown = set(defaults) - _DEFAULT_KEYS
    if unknown:
        raise TopicConfigError(f"{source}: [defaults] has unknown key(s) {sorted(unknown)}")
    entries = data.get("topic", [])
    if not isinstance(entries, list) or not entries:
        raise TopicConfigError(f"{source}: no [[topic]] entries")

    topics: list[Topic] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        where = f"{source}: topic #{i}"
        if not isinstance(entry, dict):
            raise TopicConfigError(f"{where}: must be a table")
        if "name" in entry and isinstance(entry["name"], str):
            where = f"{source}: topic {entry['name']!r}"
        unknown = set(entry) - _TOPIC_KEYS
        if unknown:
            raise TopicConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
        merged = {**defaults, **entry}
        for key in ("name", "partitions", "retention_ms"):
            if key not in merged:
                raise TopicConfigError(f"{where}: missing required key {key!r}")
        name = merged["name"]
        _check_name(name, where=where)
        if name in seen:
            raise TopicConfigError(f"{where}: declared twice")
        seen.add(name)
        partitions = _int(merged["partitions"], key="partitions", where=where)
        if partitions < 1:
            raise TopicConfigError(f"{where}: 'partitions' must be >= 1, got {partitions}")
        retention_ms = _int(merged["retention_ms"], key="retention_ms", where=where)
        if retention_ms != -1 and retention_ms <= 0:
            raise TopicConfigError(
                f"{where}: 'retention_ms' must be -1 (forever) or a positive number of ms, "
                f"got {retention_ms}"
            )
        replication = _int(merged.get("replication_factor", 1), key="replication_factor",
                           where=where)
        if replication < 1:
            raise TopicConfigError(f"{where}: 'replication_factor' must be >= 1")
        policy = merged.get("cleanup_policy", "delete")
        if policy not in CLEANUP_POLICIES:
            raise TopicConfigError(
                f"{where}: 'cleanup_policy' must be one of {sorted(CLEANUP_POLICIES)}, "
                f"got {policy!r}"
            )
        description = merged.get("description", "")
        if not isinstance(description, str):
            raise TopicConfigError(f"{where}: 'description' must be a string")
        topics.append(Topic(name, partitions, retention_ms, policy, replication, description))

    names = {t.name for t in topics}
    for t in topics:
        if t.is_dead_letter and t.name[: -len(".dlq")] not in names:
            raise TopicConfigError(
                f"{source}: dead-letter topic {t.name!r} has no source topic "
                f"{t.name[: -len('.dlq')]!r}"
            )
    return topics


@dataclass(frozen=True)
class ClusterReplication:
    """How every topic is replicated on the 3-broker cluster (``[cluster]`` of topics.toml)."""

    replication_factor: int = 3
    min_insync_replicas: int = 2

    def apply(self, topic: Topic) -> Topic:
        return Topic(topic.name, topic.partitions, topic.retention_ms, topic.cleanup_policy,
                     self.replication_factor, topic.description)

    def configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync_replicas)}


def parse_cluster(data: dict[str, Any], *, source: str = "topics.toml") -> ClusterReplication:
    """The ``[cluster]`` section: replication for cluster mode (single-node mode ignores it)."""
    section = data.get("cluster", {})
    if not isinstance(section, dict):
        raise TopicConfigError(f"{source}: [cluster] must be a table")
    unknown = set(section) - {"replication_factor", "min_insync_replicas"}
    if unknown:
        raise TopicConfigError(f"{source}: [cluster] has unknown key(s) {sorted(unknown)}")
    rf = _int(section.get("replication_factor", 3), key="replication_factor", where=f"{source}: [cluster]")
    isr = _int(section.get("min_insync_replicas", 2), key="min_insync_replicas", where=f"{source}: [cluster]")
    if rf < 1 or not 1 <= isr <= rf:
        raise TopicConfigError(f"{source}: [cluster] needs replication_factor >= 1 and "
                               f"1 <= min_insync_replicas <= replication_factor (got {rf}, {isr})")
    return ClusterReplication(rf, isr)


def load_cluster_replication(path: str | Path | None = None) -> ClusterReplication:
    """``[cluster]`` of ``infra/topics.toml`` (or another file)."""
    path = Path(path) if path is not None else TOPICS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TopicConfigError(f"cannot read {path}: {exc}") from None
    return parse_cluster(data, source=str(path))


def load_topics(path: str | Path | None = None) -> list[Topic]:
    """Read and validate ``infra/topics.toml`` (or another file)."""
    path = Path(path) if path is not None else TOPICS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopicConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_topics(text, source=str(path))


def declared_partitions(name: str) -> int:
    """The partitions ``infra/topics.toml`` declares for the topic ``name`` (without a prefix)."""
    for topic in load_topics():
        if topic.name == name:
            return topic.partitions
    raise TopicConfigError(f"{name!r} is not declared in {TOPICS_FILE}")


def topic_names(prefix: str = "", topics: Iterable[Topic] | None = None) -> list[str]:
    topics = load_topics() if topics is None else topics
    return [t.with_prefix(prefix).name for t in topics]


def ensure_topics(
    bootstrap: str,
    prefix: str = "",
    *,
    topics: Iterable[Topic] | None = None,
    timeout: float = 30.0,
    cluster: ClusterReplication | None = None,
) -> list[str]:
    """Create the declared topics (with ``prefix``) that do not exist yet, and add partitions to
    those that have fewer than declared.

    Idempotent: a topic that already exists is otherwise left alone (TopicAlreadyExistsError
    is ignored; Kafka cannot take partitions away, so a topic with more than declared keeps
    them). Returns the names created by this call. With ``cluster`` (the 3-broker mode), every
    topic is created with its replication factor and ``min.insync.replicas``. Waits until every topic of the set has a
    leader for each partition, so a producer can use them right away.

    Added partitions change which partition a key goes to from then on: a person's next
    record may land in another partition than their last one. The consumers keep their
    position per partition, so nothing is lost or read twice; records of one person sent
    before and after the change are ordered only if the consumers had caught up first (add
    partitions while the feed is quiet).
    """
    from kafka import KafkaAdminClient
    from kafka.errors import for_code

    wanted = [t.with_prefix(prefix) for t in (load_topics() if topics is None else topics)]
    if cluster is not None:
        wanted = [cluster.apply(t) for t in wanted]
    extra = cluster.configs() if cluster is not None else {}
    timeout_ms = int(timeout * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="ledger-infra-topics",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        created: list[str] = []
        if missing:
            result = admin.create_topics(
                {
                    t.name: {
                        "num_partitions": t.partitions,
                        "replication_factor": t.replication_factor,
                        "configs": {**t.configs(), **extra},
                    }
                    for t in missing
                },
                timeout_ms=timeout_ms,
                raise_errors=False,
            )
            for entry in result["topics"]:
                code = entry.get("error_code", 0)
                if code == 0:
                    created.append(entry["name"])
                elif code != _TOPIC_ALREADY_EXISTS:  # created meanwhile by someone else: fine
                    err = for_code(code)
                    raise err(f"cannot create topic {entry['name']!r}: "
                              f"{entry.get('error_message') or err.__name__}")
        present = [t for t in wanted if t.name in existing]
        if present:
            counts = {d["name"]: len(d["partitions"]) for d in admin.describe_topics([t.name for t in present])}
            grow = {t.name: t.partitions for t in present if 0 < counts.get(t.name, 0) < t.partitions}
            if grow:
                admin.create_partitions(grow, timeout_ms=timeout_ms)
        admin.wait_for_topics([t.name for t in wanted], timeout_ms=timeout_ms)
        return created
    finally:
        admin.close()


def delete_topics(bootstrap: str, prefix: str, *, timeout: float = 30.0) -> None:
    """Delete the declared topics under ``prefix`` (tests' clean-up; never without a prefix)."""
    if not prefix:
        raise ValueError("delete_topics needs a prefix: it never deletes the real topics")
    from kafka import KafkaAdminClient

    timeout_ms = int(timeout * 1000)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-infra-topics",
                             request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
    try:
        names = set(topic_names(prefix))
        present = [n for n in admin.list_topics() if n in names]
        if present:
            admin.delete_topics(present, timeout_ms=timeout_ms, raise_errors=False)
    finally:
        admin.close()
