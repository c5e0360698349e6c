"""Shared fixtures: the real Kafka broker and PostgreSQL server for integration tests.

Where the services come from (decided once per session, only when a test asks for them):

1. ``KAFKA_BOOTSTRAP_SERVERS`` and ``POSTGRES_*`` (or ``DATABASE_URL``) set in the
   environment -- e.g. by ``bash infra/dev.sh test`` -- are used as they are;
2. otherwise, with ``LEDGER_USE_TESTCONTAINERS=1`` and a Docker engine (extra ``docker``):
   throw-away containers (opt-in only, never the default; cannot run on the project's
   Docker-less machines);
3. otherwise the local stack is started with ``infra.stack.up()`` (idempotent; it is left
   running after the session so the next run starts instantly -- ``python -m infra down``).

Fixtures:
    services        session  dict of settings (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, POSTGRES_*)
    kafka_bootstrap session  "host:port"
    pg_env          module   env for eventsourcing: PERSISTENCE_MODULE=eventsourcing.postgres,
                             POSTGRES_*, and a POSTGRES_SCHEMA of its own (created before the
                             module, dropped after it)
    pg_conn         function psycopg connection whose search_path is that schema
    topic_prefix    module   unique prefix "t<hex>." under which every topic of
                             infra/topics.toml exists (deleted after the module)
    fresh_pg_ledger function a ledger on PostgreSQL in a schema of the test's own

Unit tests (tests/unit) must not use these; a test that does is marked ``integration``
automatically.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

import pytest

SERVICE_FIXTURES = frozenset({"services", "kafka_bootstrap", "pg_env", "pg_conn", "topic_prefix", "fresh_pg_ledger"})
_UNIT_DIR = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        uses = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)


def pytest_runtest_setup(item: pytest.Item) -> None:
    uses = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if uses and _UNIT_DIR in Path(str(item.fspath)).parents:
        pytest.fail(f"unit tests must not use real services ({', '.join(sorted(uses))}); "
                    "move the test to tests/integration", pytrace=False)


def _settings_from_env(env: os._Environ[str] | dict[str, str]) -> dict[str, str] | None:
    """Settings given by the environment, or None when Kafka or PostgreSQL is missing."""
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return None
    s = {"KAFKA_BOOTSTRAP_SERVERS": env["KAFKA_BOOTSTRAP_SERVERS"]}
    if env.get("POSTGRES_HOST"):
        for key in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DBNAME", "POSTGRES_USER",
                    "POSTGRES_PASSWORD"):
            s[key] = env.get(key, "")
        s["POSTGRES_PORT"] = s["POSTGRES_PORT"] or "5432"
        s["DATABASE_URL"] = env.get("DATABASE_URL") or (
            f"postgresql://{s['POSTGRES_USER']}:{s['POSTGRES_PASSWORD']}@{s['POSTGRES_HOST']}:"
            f"{s['POSTGRES_PORT']}/{s['POSTGRES_DBNAME']}")
        return s
    if env.get("DATABASE_URL"):
        url = urlsplit(env["DATABASE_URL"])
        s.update({
            "DATABASE_URL": env["DATABASE_URL"],
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_DBNAME": url.path.lstrip("/"),
            "POSTGRES_USER": unquote(url.username or ""),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
        })
        return s
    return None


def _testcontainers() -> Iterator[dict[str, str]]:  # pragma: no cover - needs a Docker engine
    """Opt-in (LEDGER_USE_TESTCONTAINERS=1, `pip install -e ".[docker]"`, a Docker engine)."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    from infra.topics import ensure_topics

    with KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft() as kafka, PostgresContainer(
        "postgres:15", username="ledger", password="ledger", dbname="ledger", driver=None
    ) as pg:
        host, port = pg.get_container_host_ip(), str(pg.get_exposed_port(5432))
        s = {"KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(), "POSTGRES_HOST": host,
             "POSTGRES_PORT": port, "POSTGRES_DBNAME": "ledger", "POSTGRES_USER": "ledger",
             "POSTGRES_PASSWORD": "ledger",
             "DATABASE_URL": f"postgresql://ledger:ledger@{host}:{port}/ledger"}
        ensure_topics(s["KAFKA_BOOTSTRAP_SERVERS"])
        yield s


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    """Connection settings of a real Kafka broker and PostgreSQL server."""
    given = _settings_from_env(os.environ)
    if given is not None:
        yield given
        return
    if os.environ.get("LEDGER_USE_TESTCONTAINERS") == "1":
        yield from _testcontainers()
        return
    from infra import stack

    try:
        yield stack.up(stack.StackConfig.from_env())
    except stack.StackError as exc:
        pytest.fail(f"could not start the local stack: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(services: dict[str, str]) -> str:
    return services["KAFKA_BOOTSTRAP_SERVERS"]


def _pg_connect_kwargs(services: dict[str, str]) -> dict[str, object]:
    return {"host": services["POSTGRES_HOST"], "port": int(services["POSTGRES_PORT"]),
            "dbname": services["POSTGRES_DBNAME"], "user": services["POSTGRES_USER"],
            "password": services["POSTGRES_PASSWORD"], "connect_timeout": 10}


def _unique(request: pytest.FixtureRequest) -> str:
    stem = getattr(request.module, "__name__", "m").rsplit(".", 1)[-1]
    stem = "".join(c for c in stem.lower() if c.isalnum() or c == "_")[:30]
    return f"{stem}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pg_env(services: dict[str, str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """eventsourcing settings with a schema of this test module's own."""
    import psycopg
    from psycopg import sql

    schema = f"t_{_unique(request)}"
    kwargs = _pg_connect_kwargs(services)
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": services["POSTGRES_HOST"],
        "POSTGRES_PORT": services["POSTGRES_PORT"],
        "POSTGRES_DBNAME": services["POSTGRES_DBNAME"],
        "POSTGRES_USER": services["POSTGRES_USER"],
        "POSTGRES_PASSWORD": services["POSTGRES_PASSWORD"],
        "POSTGRES_SCHEMA": schema,
    }
    try:
        yield env
    finally:
        with psycopg.connect(**kwargs, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def pg_conn(pg_env: dict[str, str], services: dict[str, str]) -> Iterator[object]:
    """A psycopg connection (autocommit off) whose search_path is the module's schema."""
    import psycopg

    conn = psycopg.connect(**_pg_connect_kwargs(services),
                           options=f"-c search_path={pg_env['POSTGRES_SCHEMA']}")
    try:
        yield conn
    finally:
        conn.close()



@pytest.fixture
def fresh_pg_ledger(services: dict[str, str]) -> Iterator[object]:
    """A ledger on PostgreSQL in a schema of this test's own (created before, dropped after)."""
    import psycopg
    from psycopg import sql

    from entrypoints.wiring import bootstrap
    from infra.settings import Settings

    schema = f"t_ledger_{uuid.uuid4().hex[:8]}"
    kwargs = {**_pg_connect_kwargs(services), "autocommit": True}
    with psycopg.connect(**kwargs) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    postgres = {k: v for k, v in services.items() if k.startswith("POSTGRES_")} | {"POSTGRES_SCHEMA": schema}
    system = bootstrap(Settings(persistence="postgres", postgres=postgres, id_key=b"fresh-pg-ledger-tests"))
    try:
        yield system.ledger
    finally:
        system.close()
        with psycopg.connect(**kwargs) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

@pytest.fixture(scope="module")
def topic_prefix(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique prefix ("t<hex>.") under which every topic of infra/topics.toml exists."""
    from infra.topics import delete_topics, ensure_topics

    prefix = f"t{uuid.uuid4().hex[:10]}."
    ensure_topics(kafka_bootstrap, prefix)
    try:
        yield prefix
    finally:
        try:
            delete_topics(kafka_bootstrap, prefix)
        except Exception:  # best effort: a leftover test topic harms nothing
            pass


@pytest.fixture
def prefix(kafka_bootstrap: str, topic_prefix: str) -> Iterator[str]:
    """Topics of this test's own: the module's prefix plus a part for the test, deleted afterwards."""
    from infra.topics import delete_topics, ensure_topics

    own = f"{topic_prefix}{uuid.uuid4().hex[:6]}."
    ensure_topics(kafka_bootstrap, own)
    yield own
    try:
        delete_topics(kafka_bootstrap, own)
    except Exception:  # best effort: a leftover test topic harms nothing
        pass



@pytest.fixture
def hostile():
    """The session's hostile-input tally (tests/hostile.py): ``hostile.attempt(name, status=..., ...)``."""
    from tests.hostile import TALLY

    return TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    from tests.hostile import TALLY

    if TALLY.attempts:
        terminalreporter.write_line(f"hostile: {TALLY.line()}")
