"""The main job: a synthetic county through the whole pipeline, and what each user wants first.

Feeds go where production feeds go: tax payments, status grants and registry records
are written as the integrators' CSV exports and put on their topics as Avro by
``ledger feed``'s own code (rows it refuses, such as a bad ID check digit, are counted
as its report would list them), onto in-process topics on the embedded default or the
real Kafka broker when ``KAFKA_BOOTSTRAP_SERVERS`` is set, and taken in by the same
consumers as in production; rows a careless producer sends raw (malformed Avro, an
unknown schema) go straight onto the topics to reach the dead letters; clerk actions go through the application service as the
HTTP API would; the publisher puts every ledger event on ``ledger.events.v1``; the
projection runner builds the views; the report is read from the views. The tax
bureau's daily statements (对账单) go onto ``tax.statements.v1`` the same way and are
reconciled against the ledger by the production reconciliation process, run embedded.
Then a clerk works the next year's business cases (:mod:`entrypoints.demo_cases`: late fees
collected and waived, clerk-entered statuses, employer arrears exported to XLSX, a person
registered twice merged, a duplicate enrollment ended with its refund and a large refund, all three
through maker-checker, a statements file with one day missing). The demo checks the ledger against what the generator knows it left
uncovered, and why, the reconciliation against the discrepancies the generator put in, and each
case against the generator's own figures (:mod:`entrypoints.simulation.cases`). The report tells
the county's story in Chinese with one line per check; ``--check`` adds each check's figures.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from infra.settings import environment, load_settings, postgres_from_env, setting, setting_text
from ledger.domain.identity import mask_id_number
from entrypoints.command import command
from entrypoints.console import pad, print_table as _print_table
from entrypoints.messages import PLACES, headings, lang_of, term, text
from entrypoints import catalogue
from entrypoints.chart import coverage_chart
from entrypoints.demo_cases import run_cases
from events.ledger_events import mask_name
from entrypoints.main import help_of
from consumers.file_feeder import feed_file, person_key
from entrypoints.simulation import generate_county, timeline
from entrypoints import wiring
from entrypoints.audit.describe import english
from entrypoints.audit.replay import history_report
from entrypoints.http.coverage_reasons import history_note
from entrypoints.http.web.ledger_exports import fee_arithmetic
from entrypoints.http.web import labels as web_labels
from entrypoints.http.demo_state import cli_prefix, demo_dir, write_id_key, write_manifest
from entrypoints.wiring import feed_consumer, ledger_publisher
from events import codec, inbound
from infra.topics import ensure_topics
from ledger.domain.errors import DomainError
from ledger.domain.feed_rejection import FeedRejection
from ledger.domain.gaps import REASONS, REASON_LABELS
from ledger.log import configure_logging
from infra.sql_store import connect_in_schema
from projections.progress import ProgressBar
from projections.factory import projection_runner, view_queries
from reconciliation.compare import yuan
from reconciliation.reports import county_summary, open_discrepancies
from reconciliation.factory import STATEMENTS_TOPIC, reconciler, statement_consumer


@dataclass
class DemoResult:
    """The demo's figures, and whether the ledger agreed with the generator's truth."""

    people: int
    seed: int
    store: str
    transport: str
    seconds: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    region_name: str = ""  # the county's name, for the report's title (not part of ``--json``)
    state_dir: str = ""  # where the run's data stays for `ledger serve --demo` (empty when the caller chose the env)
    next_steps: dict[str, Any] = field(default_factory=dict)  # the closing block's facts (not part of ``--json``)

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks.values())


def _fresh_env(people: int, seed: int) -> dict[str, str]:
    """Settings for one demo run: its own SQLite files, or its own schema and topic prefix.

    The run's state is kept in :func:`demo_dir` (``var/demo/``), replaced by the next run, so that
    ``ledger serve --demo`` and the CLI can open the same data afterwards: its ID key is a file
    there (``LEDGER_ID_KEY`` from the environment wins, as for any run), and ``demo.json`` names
    the settings below (see :mod:`entrypoints.http.demo_state`).
    """
    env = environment()
    root = demo_dir(env)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env["LEDGER_STATE_DIR"] = str(root)
    if setting("LEDGER_PERSISTENCE", env) == "postgres":
        env["POSTGRES_SCHEMA"] = f"demo_{uuid.uuid4().hex[:10]}"
    else:
        env["LEDGER_SQLITE_PATH"] = str(root / "ledger.sqlite")
        env["LEDGER_VIEWS_PATH"] = str(root / "views.sqlite")
    if not setting_text("LEDGER_ID_KEY", env):
        write_id_key(root, f"demo-key-{seed}")
    if setting_text("KAFKA_BOOTSTRAP_SERVERS", env):
        env["LEDGER_TOPIC_PREFIX"] = f"demo{uuid.uuid4().hex[:8]}."
    return env


#: The settings ``_fresh_env`` sets that ``ledger serve --demo`` needs again (kept in ``demo.json``).
_KEPT = ("LEDGER_SQLITE_PATH", "LEDGER_VIEWS_PATH", "POSTGRES_SCHEMA", "LEDGER_TOPIC_PREFIX")


def _create_schema(env: dict[str, str]) -> None:
    connect_in_schema(postgres_from_env(env), env["POSTGRES_SCHEMA"]).close()


def feed_record_bytes(kind: str, record: Any) -> bytes:
    if kind == timeline.TAX:
        return codec.encode(inbound.TAX_PAYMENT, inbound.tax_record_to_avro(record))
    if kind == timeline.STATUS:
        return codec.encode(inbound.SUBSIDY_STATUS, inbound.status_record_to_avro(record))
    return codec.encode(inbound.RESIDENT_RECORD, inbound.resident_record_to_avro(record))


def malformed_record_bytes(topic: str, row: dict[str, Any]) -> bytes:
    """A malformed row as a careless producer would send it: Avro when it still encodes, JSON when not."""
    name = inbound.TOPIC_RECORDS[topic][0]
    try:
        return codec.encode(name, row)
    except codec.AvroError:
        return json.dumps(row, default=str, ensure_ascii=False).encode()


def feed_record_key(record: Any) -> bytes:
    """Kafka key of a feed record: by person (:func:`consumers.file_feeder.person_key`), as ``ledger feed`` keys them."""
    return person_key(record.id_type, record.id_number)


class _Pipeline:
    """Feeds onto topics, consumers, clerk actions, publisher, projections: one system, in timeline order."""

    def __init__(self, system: Any) -> None:
        self.system = system
        self.feeds = timeline
        self.kafka = bool(system.settings.kafka_bootstrap_servers)
        if self.kafka:
            from consumers.kafka_io import KafkaSink, make_producer

            ensure_topics(system.settings.kafka_bootstrap_servers, system.settings.topic_prefix)
            self.producer = KafkaSink(make_producer(system.settings.kafka_bootstrap_servers))
            system.closers.append(self.producer.close)
        else:
            self.producer = system.inprocess_broker()
        self.topic_of = {timeline.TAX: timeline.TAX_TOPIC, timeline.STATUS: timeline.STATUS_TOPIC,
                         timeline.RESIDENCE: timeline.RESIDENTS_TOPIC}
        self.consumers = {
            timeline.TAX: feed_consumer(system, "tax", max_records=500, poll_timeout=0.2),
            timeline.STATUS: feed_consumer(system, "status", max_records=500, poll_timeout=0.2),
            timeline.RESIDENCE: feed_consumer(system, "residents", max_records=500, poll_timeout=0.2),
        }
        self.publisher = ledger_publisher(system)
        self.feed_names = {timeline.TAX: "tax", timeline.STATUS: "status", timeline.RESIDENCE: "residents"}
        self.files = 0
        self.produced: Counter[str] = Counter()
        self.consumed: Counter[str] = Counter()
        self.clerk_errors: Counter[str] = Counter()
        self.file_refusals: Counter[str] = Counter()  # rows ``ledger feed`` reported and did not send

    def produce(self, kind: str, payloads: Iterable[tuple[bytes, bytes]]) -> None:
        topic = self.system.topic(self.topic_of[kind])
        for key, value in payloads:
            self.producer.send(topic, key=key, value=value)
            self.produced[kind] += 1
        self.producer.flush()

    def feed_file(self, kind: str, records: list[Any]) -> None:
        """The records as the integrator's CSV export, put on the topic by ``ledger feed``'s own code.

        Rows the file check refuses (a bad ID check digit, ...) are not sent; like the
        command's report by line number, they are counted by code in ``file_refusals``.
        """
        self.files += 1
        report = feed_file(self.feed_names[kind], self.feeds.feed_csv(kind, records), f"{kind}-{self.files}.csv",
                           self.producer, topic_prefix=self.system.settings.topic_prefix)
        self.produced[kind] += report.sent
        self.file_refusals.update(bad["code"] for bad in report.bad)

    def produce_statements(self, statements: Iterable[Any]) -> int:
        """The daily statements as Avro, header and lines keyed by statement id; the number of records sent."""
        topic = self.system.topic(STATEMENTS_TOPIC)
        sent = 0
        for st in statements:
            key = st.statement_id.encode()
            self.producer.send(topic, key=key, value=codec.encode(inbound.TAX_STATEMENT_HEADER, st.header_avro()))
            for line in st.lines:
                self.producer.send(topic, key=key, value=codec.encode(inbound.TAX_STATEMENT_LINE, line.as_avro()))
            sent += 1 + len(st.lines)
        self.producer.flush()
        return sent

    def drain(self, kind: str) -> None:
        """Run the feed's consumer until everything produced to it has been taken in."""
        runner = self.consumers[kind]
        deadline = time.monotonic() + 120
        while self.consumed[kind] < self.produced[kind]:
            for result in runner.run_once():
                self.consumed[kind] += result.last_offset - result.first_offset + 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} consumer did not catch up within 120 s")

    def clerk(self, action: Any) -> None:
        try:
            self.feeds._apply_one(self.system.ledger, action, self._no_feed)
        except DomainError as e:
            self.clerk_errors[e.code] += 1

    @staticmethod
    def _no_feed(topic: str, key: str) -> Any:  # clerk actions never come from a feed
        raise AssertionError(f"clerk action routed to feed {topic}")

    def run(self, county: Any, progress: Any) -> None:
        run_kind: str | None = None
        run: list[Any] = []

        def flush() -> None:
            if not run:
                return
            self.feed_file(run_kind, [a.record for a in run])
            self.drain(run_kind)
            progress.advance(len(run))
            run.clear()

        for action in county.actions:
            if action.kind in self.topic_of:
                if action.kind != run_kind:
                    flush()
                    run_kind = action.kind
                run.append(action)
                if len(run) >= 2000:
                    flush()
                continue
            flush()
            run_kind = None
            self.clerk(action)
            progress.advance(1)
        flush()
        by_topic: dict[str, list[Any]] = {}
        for m in county.malformed_rows:
            by_topic.setdefault(m.topic, []).append(m)
        kind_of = {v: k for k, v in self.topic_of.items()}
        for topic, rows in by_topic.items():
            kind = kind_of[topic]
            self.produce(kind, ((f"malformed-{i}".encode(), malformed_record_bytes(topic, m.row))
                                for i, m in enumerate(rows)))
            self.drain(kind)
        progress.advance(len(county.malformed_rows))


def rejection_codes(system: Any) -> Counter[str]:
    """Codes of the feed records the consumers rejected and kept (FeedRejection events in the ledger)."""
    codes: Counter[str] = Counter()
    start = 1
    while True:
        notifications = system.ledger.recorder.select_notifications(start=start, limit=5000)
        if not notifications:
            return codes
        for n in notifications:
            if n.topic.endswith("FeedRejection.Rejected"):
                event = system.ledger.mapper.to_domain_event(n)
                assert isinstance(event, FeedRejection.Rejected)
                codes[event.code] += 1
        start = notifications[-1].id + 1


def run_pipeline(people: int, seed: int, *, env: dict[str, str] | None = None, quiet: bool = False) -> DemoResult:
    """Generate a county, run it through the pipeline, read the views, check against the truth."""
    # The report is the output; per-record log lines (rejections included) are summarised in the checks.
    configure_logging(level="ERROR", force=True)
    fresh = env is None
    env = env if env is not None else _fresh_env(people, seed)
    if setting("LEDGER_PERSISTENCE", env) == "postgres":
        _create_schema(env)
    settings = load_settings(env)  # the run's own files: views, reconciliation and digests included
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    county = generate_county(seed, people)
    timings["generate"] = time.perf_counter() - t0
    system = wiring.bootstrap(settings)  # looked up now: a test may wrap the one wiring function
    result = DemoResult(people=people, seed=seed, store=settings.persistence,
                        transport="kafka" if settings.kafka_bootstrap_servers else "in-process")
    try:
        t0 = time.perf_counter()
        pipeline = _Pipeline(system)
        bar = ProgressBar(len(county.actions) + len(county.malformed_rows), label="feeds → ledger",
                          unit="records", enabled=not quiet)
        pipeline.run(county, bar)
        bar.close() if hasattr(bar, "close") else None
        timings["feeds_to_ledger"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        published = pipeline.publisher.publish_pending()
        timings["publish"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        projection_runner(system).run_once(progress=not quiet, label="events → views")
        timings["project"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sent = pipeline.produce_statements(county.statements)
        timings["statements"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        recon = _reconcile(system, sent)
        timings["reconcile"] = time.perf_counter() - t0
        queries = view_queries(system)
        result.report = _report(system, county, queries, published)
        result.region_name = county.region_name
        result.report["reconciliation"] = _reconciliation_report(recon.store, county, sent)
        result.checks = truth_checks(system, county, queries, pipeline)
        result.checks["reconciliation"] = _reconciliation_check(result.report["reconciliation"], county)
        t0 = time.perf_counter()  # the next year's business cases, after the season's figures are read
        result.report["cases"], case_checks = run_cases(
            system, county, pipeline, state_dir=Path(env["LEDGER_STATE_DIR"]) if fresh else None,
            reconcile=_reconcile)
        result.checks.update(case_checks)
        timings["cases"] = time.perf_counter() - t0
        if fresh:  # kept for `ledger serve --demo`: the run, and the settings that point at it
            result.state_dir = env["LEDGER_STATE_DIR"]
            manifest = {"run": _run_facts(result, county), "settings": {k: env[k] for k in _KEPT if k in env}}
            write_manifest(Path(result.state_dir), manifest["run"], manifest["settings"])
            result.next_steps = {**manifest["run"], "env": cli_prefix(Path(result.state_dir), manifest)}
    finally:
        system.close()
    result.seconds = {k: round(v, 2) for k, v in timings.items()}
    return result


def _run_facts(result: DemoResult, county: Any) -> dict[str, Any]:
    """What the closing block and ``serve --demo`` name: the county, a grid with gaps, the year."""
    grids = result.report.get("lowest_grids") or [{"grid": ""}]
    return {"people": result.people, "seed": result.seed, "store": result.store, "region": county.region_code,
            "region_name": county.region_name, "grid": grids[0]["grid"], "year": county.coverage_year,
            "as_of": county.as_of.isoformat()}


def _reconcile(system: Any, records: int) -> Any:
    """The reconciliation process, embedded: statements taken in, ledger side caught up from the log, compared."""
    recon = reconciler(system)
    loop = statement_consumer(system, recon, max_records=5000, poll_timeout=0.2)
    taken = 0
    deadline = time.monotonic() + 120
    while taken < records:  # each round: statements in, ledger side caught up, completed statements compared
        taken += sum(b.last_offset - b.first_offset + 1 for b in loop.run_once(timeout=0.2).batches)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the statement consumer took {taken} of {records} records within 120 s")
    loop.run_once(timeout=0)  # the ledger side once more, and anything completed last
    return recon


def _reconciliation_report(store: Any, county: Any, sent: int) -> dict[str, Any]:
    """Per county and office: collected per the statements, recorded by the ledger, explained; open discrepancies."""
    offices: dict[tuple[str, str], dict[str, Any]] = {}
    states: Counter[str] = Counter()
    header_ok = 0
    statements = store.statements([s.statement_id for s in county.statements])
    for s in statements.values():
        states[s["state"]] += 1
        r = offices.setdefault((s["region_code"], s["tax_office"]), {
            "region": s["region_code"], "office": s["tax_office"], "statements": 0, "lines": 0, "collected_fen": 0,
            "ledger_rows": 0, "recorded_fen": 0, "difference_fen": 0, "explained_fen": 0, "tied": 0})
        r["statements"] += 1
        header_ok += s["total_amount_fen"] == s["lines_fen"] and s["line_count"] == s["lines_received"]
        tie = (s.get("result") or {}).get("tie_out")
        if not tie:
            continue
        total = tie["total"]
        r["lines"] += total["statement"][0]
        r["collected_fen"] += total["statement"][1]
        r["ledger_rows"] += total["ledger"][0]
        r["recorded_fen"] += total["ledger"][1]
        r["difference_fen"] += total["difference"][1]
        r["explained_fen"] += total["explained"][1]
        r["tied"] += bool(tie["ok"])
    office_rows = []
    for key in sorted(offices):
        r = offices[key]
        r["ties_out"] = "yes" if r["tied"] == r["statements"] else f"NO ({r['statements'] - r['tied']})"
        office_rows.append(r)
    days = county_summary(store)
    counties: dict[str, dict[str, Any]] = {}
    for d in days:
        c = counties.setdefault(d["region_code"], {"region": d["region_code"], "days": 0, "statements": 0,
                                                   "collected_fen": 0, "recorded_fen": 0, "difference_fen": 0,
                                                   "ledger_rows_without_statement": 0, "open_discrepancies": 0,
                                                   "open_fen": 0})
        c["days"] += 1
        for k in ("statements", "collected_fen", "recorded_fen", "difference_fen", "open_discrepancies", "open_fen"):
            c[k] += d[k]
        if not d["statements"]:
            c["ledger_rows_without_statement"] += d["ledger_rows"]
    for c in counties.values():
        explained = sum(r["explained_fen"] for r in office_rows if r["region"] == c["region"])
        c["explained_fen"] = explained
        c["ties_out"] = "yes" if (c["difference_fen"] == explained and not c["ledger_rows_without_statement"]
                                  and all(r["ties_out"] == "yes" for r in office_rows if r["region"] == c["region"])
                                  ) else "NO"
    open_ = open_discrepancies(store)
    by_class: dict[str, dict[str, int]] = {}
    for d in open_:
        b = by_class.setdefault(d["class"], {"count": 0, "delta_fen": 0})
        b["count"] += 1
        b["delta_fen"] += d["delta_fen"]
    errors = store.errors()
    return {
        "records_sent": sent, "statements_sent": len(county.statements), "statements_received": len(statements),
        "states": dict(states), "headers_tie_to_lines": header_ok, "intake_errors": dict(Counter(e["code"] for e in errors)),
        "counties": [counties[k] for k in sorted(counties)], "offices": office_rows,
        "open_by_class": dict(sorted(by_class.items())),
        "open": [{"class": d["class"], "business_date": d["scope"]["business_date"], "office": d["tax_office"],
                  "region": d["scope"]["region_code"], "voucher_no": d["voucher_no"], "line_no": d["line_no"],
                  "delta_count": d["delta_count"], "delta_fen": d["delta_fen"]} for d in open_],
        "expected_by_class": dict(county.truth.expected_discrepancies),
    }


def _reconciliation_check(rec: dict[str, Any], county: Any) -> dict[str, Any]:
    """Discrepancies found per class = the generator's (exactly); every statement reconciled and tied out."""
    found = {k: v["count"] for k, v in rec["open_by_class"].items()}
    expected = dict(county.truth.expected_discrepancies)
    n = rec["statements_sent"]
    reconciled = rec["states"].get("RECONCILED", 0)
    tied = sum(r["tied"] for r in rec["offices"])
    uncovered = sum(c["ledger_rows_without_statement"] for c in rec["counties"])
    return {
        "ok": (found == expected and reconciled == n == rec["statements_received"] and tied == n
               and rec["headers_tie_to_lines"] == n and not rec["intake_errors"] and not uncovered),
        "expected": expected, "found": found, "statements": n, "reconciled": reconciled, "tied_out": tied,
        "intake_errors": rec["intake_errors"], "ledger_rows_without_statement": uncovered,
    }


def _pct(bp: int | None) -> str:
    return "—" if bp is None else f"{bp // 100}.{bp % 100:02d}%"


def _rounded_bp(part: int, whole: int) -> int | None:
    """``part / whole`` in basis points, rounded half up on integers (144/166 -> 8675, not 8674)."""
    return None if not whole else (part * 20000 + whole) // (2 * whole)


def _pct_of(part: int, whole: int) -> str:
    """A rate as a person reads it: two decimals, rounded (144/166 -> ``86.75%``); ``—`` when nothing to count."""
    return _pct(_rounded_bp(part, whole))


def _place_name(system: Any, code: str, day: Any) -> str:
    """A grid's village or community from the deployment's places table (the packaged sample: 示例), else ``""``."""
    places = getattr(system, "places", None)
    return (places.name_on(code, day) or "") if places is not None else ""


def _report(system: Any, county: Any, queries: Any, published: int) -> dict[str, Any]:
    year = county.coverage_year
    as_of = county.as_of
    rates = queries.coverage_rates(year, as_of)
    townships = {t.code: t for t in county.townships}
    township_rows = [
        {"township": code, "name": townships[code].name if code in townships else "",
         "residents": s["residents"], "covered": s["covered"], "coverage": _pct_of(s["covered"], s["residents"]),
         "subsidised": s["subsidised"], "subsidised_covered": s["subsidised_covered"],
         "subsidised_coverage": _pct_of(s["subsidised_covered"], s["subsidised"])}
        for code, s in rates["townships"].items()
    ]
    grid_rows = sorted(
        ({"grid": g, "name": _place_name(system, g, as_of), "residents": s["residents"], "covered": s["covered"], "coverage": _pct_of(s["covered"], s["residents"]),
          "coverage_bp": _rounded_bp(s["covered"], s["residents"]) or 0, "gaps": s["residents"] - s["covered"]}
         for g, s in rates["grids"].items()),
        key=lambda r: (r["coverage_bp"], r["grid"]),
    )
    gaps: list[dict[str, Any]] = []
    for code in rates["townships"]:
        gaps.extend(queries.gap_list(code, year, as_of))

    gaps.sort(key=lambda r: (REASONS.index(r["reason"]), r["grid_code"], r["person_id"]))
    names = _masked_names(system, county, {g["person_id"] for g in gaps[:15]}
                          | {g["person_id"] for g in gaps if g["reason"] == "SUBSIDISED_NOT_COVERED"})
    for g in gaps:
        g["name"] = names.get(str(g["person_id"])) or g.get("name") or ""
    subsidised_missing = [g for g in gaps if g["reason"] == "SUBSIDISED_NOT_COVERED"]
    arrears = queries.arrears(as_of)
    arrears_rows = arrears["rows"] if isinstance(arrears, dict) else arrears
    totals = {
        "rows": len(arrears_rows),
        "outstanding_fen": sum(r["outstanding_fen"] for r in arrears_rows),
        "late_fee_fen": sum(r.get("late_fee_fen", 0) for r in arrears_rows),
        "fee_only_rows": sum(1 for r in arrears_rows if r.get("fee_only")),  # paid late, fee unpaid
    }
    by_kind: Counter[str] = Counter(r.get("kind", "?") for r in arrears_rows)
    sample = _sample_history(system, county)
    transfer_rows = system.ledger.transfers_of_region(county.region_code, today=as_of)
    transfers = {
        "region": county.region_code,
        "incoming_open": sum(1 for t in transfer_rows if t["direction"] == "INCOMING" and t["awaiting"]),
        "outgoing_open": sum(1 for t in transfer_rows if t["direction"] == "OUTGOING" and t["awaiting"]),
        "overdue": sum(1 for t in transfer_rows if t["overdue"]),
        "done": sum(1 for t in transfer_rows if t["status"] == "DONE"),
        "open_top": [{"transfer_id": t["transfer_id"], "direction": t["direction"], "masked_id": mask_id_number(
            t["id_number"]), "from": t["from_region"], "to": t["to_region"], "due_on": str(t["due_on"]),
            "overdue_days": t["overdue_working_days"]} for t in transfer_rows if t["awaiting"]][:10],
    }
    total = {"residents": sum(s["residents"] for s in rates["townships"].values()),
             "covered": sum(s["covered"] for s in rates["townships"].values()),
             "subsidised": sum(s["subsidised"] for s in rates["townships"].values()),
             "subsidised_covered": sum(s["subsidised_covered"] for s in rates["townships"].values())}
    return {
        "coverage_year": year,
        "as_of": as_of.isoformat(),
        "county": {**total, "coverage": _pct_of(total["covered"], total["residents"]),
                   "subsidised_coverage": _pct_of(total["subsidised_covered"], total["subsidised"])},
        "townships": township_rows,
        "lowest_grids": grid_rows[:10],
        "gaps_by_reason": dict(Counter(g["reason"] for g in gaps)),
        "gap_labels": {k: REASON_LABELS[k] for k in REASONS},
        "subsidised_missing": [{k: g.get(k) for k in ("masked_id", "name", "grid_code", "reason", "detail")}
                               for g in subsidised_missing[:20]],
        "gap_top": [{k: g.get(k) for k in ("masked_id", "name", "grid_code", "reason", "detail")} for g in gaps[:15]],
        "arrears": {**totals, "by_kind": dict(by_kind)},
        "transfers": transfers,
        "published_events": published,
        "history": sample,
    }


def _masked_names(system: Any, county: Any, person_ids: set[Any]) -> dict[str, str]:
    """Masked names (张*) of the given people, from the registry records the county was fed with.

    The views keep no name (only the masked ID); the ledger holds it encrypted. The report
    needs it for the people a grid worker must call on, masked as everywhere it is shown.
    """
    wanted = {str(p) for p in person_ids}
    names: dict[str, str] = {}
    for p in county.persons:
        pid = str(system.ledger.person_id("RESIDENT_ID", p.id_number))
        if pid in wanted and p.name:
            names[pid] = mask_name(p.name)
    return names


def _sample_history(system: Any, county: Any) -> dict[str, Any]:
    """One replayed person: the first subsidised person who also paid, so the history shows both."""
    truth = county.truth.by_id()
    chosen = next((p for p in county.persons if truth.get(p.id_number) and truth[p.id_number].subsidised
                   and truth[p.id_number].net_paid_fen), None) or county.persons[0]
    report = history_report(system.ledger, "RESIDENT_ID", chosen.id_number, printable=True)
    report.pop("name", None)  # the printable extras give each event's Chinese line; the name stays out of the report
    return {"masked_id": mask_id_number(chosen.id_number), "report": report}


def truth_checks(system: Any, county: Any, queries: Any, pipeline: _Pipeline) -> dict[str, Any]:
    """The ledger against the generator's truth: the same people uncovered, for the same reasons."""
    truth = county.truth
    year, as_of = county.coverage_year, county.as_of
    rates = queries.coverage_rates(year, as_of)
    found: dict[str, str] = {}
    for code in rates["townships"]:
        for g in queries.gap_list(code, year, as_of):
            found[g["person_id"]] = g["reason"]
    expected: dict[str, str] = {}
    for t in truth.persons:
        if t.scope == "IN_COUNTY" and not t.covered and t.reason:
            expected[str(system.ledger.person_id("RESIDENT_ID", t.id_number))] = t.reason
    wrong_reason = {p: (expected[p], found[p]) for p in expected.keys() & found.keys() if expected[p] != found[p]}
    rejected = rejection_codes(system)
    return {
        "gap_people": {
            "ok": expected.keys() == found.keys() and not wrong_reason,
            "expected": len(expected), "found": len(found),
            "missing": len(expected.keys() - found.keys()), "unexpected": len(found.keys() - expected.keys()),
            "wrong_reason": len(wrong_reason),
        },
        "bad_records_kept": {
            "ok": (sum(rejected.values()) + sum(pipeline.clerk_errors.values()) + sum(pipeline.file_refusals.values())
                   == truth.bad_record_count),
            "expected": truth.bad_record_count,
            "rejected_by_consumers": sum(rejected.values()),
            "refused_clerk_actions": sum(pipeline.clerk_errors.values()),
            "refused_by_feed_files": sum(pipeline.file_refusals.values()),
            "codes": dict(sorted((rejected + pipeline.clerk_errors + pipeline.file_refusals).items())),
            "expected_ledger_codes": truth.error_counts(),
        },
        "all_consumed": {
            "ok": all(pipeline.consumed[k] == pipeline.produced[k] for k in pipeline.produced),
            "produced": dict(pipeline.produced), "consumed": dict(pipeline.consumed),
        },
    }


def _yuan_or_blank(fen: Any) -> str:
    return "" if fen is None else yuan(fen)


def _kv(values: dict[str, Any], lang: str, sep: str | None = None) -> str:
    """A mapping as a person reads it: ``城乡居民 113，职工 2`` (never a Python dict)."""
    if not values:
        return text("recon_none", lang)
    sep = sep if sep is not None else ("，" if lang == "zh" else ", ")
    return sep.join(f"{term(k, lang)} {v:,}" if isinstance(v, int) else f"{term(k, lang)} {v}"
                    for k, v in values.items())


def _check_line(name: str, check: dict[str, Any], lang: str, *, figures: bool = True) -> str:
    """One truth check on one line: its verdict and what it checks; with ``figures`` (``--check``) its figures
    (nested ones as ``code n``), for the developer."""
    verdict = pad(text("check_ok" if check["ok"] else "check_failed", lang), 6)
    line = f"  {verdict} {term(name, lang)}"
    if not figures:
        return line
    parts = []
    for k, v in check.items():
        if k == "ok":
            continue
        parts.append(f"{k}: {_kv(v, 'en', ', ') if isinstance(v, dict) else v}")
    return f"{line} ({name}): " + "; ".join(parts)


def _print_checks(result: DemoResult, lang: str, *, figures: bool) -> None:
    failed = [name for name, c in result.checks.items() if not c["ok"]]
    if failed:
        print("\n" + text("checks_failed", lang, n=len(result.checks), failed=len(failed),
                          names=("，" if lang == "zh" else ", ").join(term(n, lang) for n in failed)))
    else:
        print("\n" + text("checks_summary", lang, n=len(result.checks)))
    for name, check in result.checks.items():
        print(_check_line(name, check, lang, figures=figures))


def _print_cases(c: dict[str, Any], table: Any, lang: str) -> None:
    """The next year's business cases (#22): one line each, the employer arrears as a table."""
    print("\n" + text("cases", lang, year=c["year"], as_of=c["as_of"]))
    f = c["late_fees"]
    months = ("、" if lang == "zh" else ", ").join(f["months"])
    print(text("case_late_fees", lang, employer=f["employer_id"], staff=f["staff"], months=months,
               accrued=yuan(f["accrued_fen"]), collected=yuan(f["collected_fen"]), waived=yuan(f["waived_fen"]),
               approver=f["approver"], reason=f["reason"], owed=yuan(f["owed_fen"]),
               refused=f["self_refused"] or text("recon_none", lang)))
    if f["arithmetic"]:
        print(text("case_fee_arithmetic", lang,
                   arithmetic=fee_arithmetic(f["sample_row"], lang) if len(f.get("sample_row") or {}) == 9
                   else f["arithmetic"]))
    s = c["statuses"]
    print(text("case_statuses", lang, ep_due=yuan(s["extreme_poverty"]["due_fen"]),
               ep_covered=text("case_covered" if s["extreme_poverty"]["covered"] else "case_not_covered", lang),
               two_subsidy=yuan(s["two_statuses"]["subsidy_fen"] or 0),
               two_sum=yuan(s["two_statuses"]["expected"]["sum_of_subsidies_fen"]),
               two_due=yuan(s["two_statuses"]["due_fen"]), paid=yuan(s["owed_back"]["paid_fen"]),
               owed_back=yuan(s["owed_back"]["overpayment_fen"]), revoked_due=yuan(s["revoked"]["due_fen"])))
    a = c["arrears"]
    print(text("case_arrears", lang, as_of=c["as_of"], count=a["count"], total=yuan(a["total_fen"]),
               path=a["path"] or "arrears.xlsx"))
    table([{**e, "outstanding": yuan(e["outstanding_fen"]), "late_fee": yuan(e["late_fee_fen"]),
            "total": yuan(e["total_fen"])} for e in a["employers"]],
          ["employer_id", "months", "persons", "outstanding", "late_fee", "total", "days_overdue"])
    if "merge" in c:
        m, d, k = c["merge"], c["duplicate"], c["correction"]
        print(text("case_merge", lang, merged=m["merged"], kept=m["kept"], clerk=m["clerk"], approver=m["approver"],
                   refused=m["self_refused"] or text("recon_none", lang),
                   residents_before=m["before"]["residents"], residents_after=m["after"]["residents"],
                   gaps_before=m["before"]["gaps"], gaps_after=m["after"]["gaps"],
                   arrears_before=m["before"]["in_arrears"], arrears_after=m["after"]["in_arrears"],
                   paid=yuan(m["paid_fen"])))
        print(text("case_duplicate", lang, person=d["person"], hired_on=d["hired_on"], refund=yuan(d["refund_fen"] or 0)))
        print(text("case_correction", lang, person=k["person"], month=k["month"], amount=yuan(k["amount_fen"]),
                   threshold=yuan(k["threshold_fen"]), pending=yuan(k["paid_pending_fen"]),
                   after=yuan(k["paid_after_fen"])))
    st = c["statements"]
    missing = ("；" if lang == "zh" else "; ").join(
        text("case_missing_day", lang, day=m["business_date"], office=m["tax_office"], rows=m["ledger_rows"],
             amount=yuan(m["recorded_fen"])) for m in st["missing"]) or text("recon_none", lang)
    print(text("case_statements", lang, file=st["file"], statements=st["statements"], lines=st["lines"],
               reconciled=st["reconciled"], missing=missing))
    if "migration" in c:
        g, sep = c["migration"], ("、" if lang == "zh" else ", ")

        def years(ys: list[int]) -> str:
            return f"{ys[0]}–{ys[-1]}" if len(ys) > 1 else sep.join(map(str, ys))

        print(text("case_migration", lang, file=g["file"], rows=g["rows"], imported=g["imported"],
                   again=g["again_imported"], already=g["again_already"], person=g["person"], last=g["last_covered"],
                   old=years(g["old_years"]), paid_on=g["paid_on"], back=years(g["back_years"]), gap=g["gap_years"],
                   arithmetic=g["arithmetic"], waiting=g["waiting_months"], covered_from=g["covered_from"] or "—",
                   continuous=g["continuous"], continuous_from=g["continuous_covered_from"] or "—", twin=g["twin"],
                   note=(history_note(g["twin_horizon"], g["twin_year"], lang) if g.get("twin_horizon") else g["twin_note"])
                   or text("recon_none", lang)))
    if "next_year" in c:
        n = c["next_year"]
        print(text("case_next_year", lang, year=n["year"], regions=n["regions"], assessed=n["assessed"],
                   dues=" / ".join(yuan(d) for d in n["dues_fen"]) or "—", provisional=n["provisional"]))


def _print_report(result: DemoResult, lang: str = "zh", *, check: bool = False) -> None:
    r = result.report
    heads = headings(lang)

    def table(rows: list[dict[str, Any]], cols: list[str]) -> None:
        _print_table(rows, cols, heads)

    c = r["county"]
    print("\n" + text("title", lang, county=result.region_name or r["transfers"]["region"], people=result.people,
                      seed=result.seed, year=r["coverage_year"], as_of=r["as_of"]))
    print(text("setup", lang, store=term(result.store, lang), transport=term(result.transport, lang)))
    print(text("headline", lang, **c) + "\n")
    print(text("townships", lang))
    table(r["townships"], ["township", "name", "residents", "covered", "coverage", "subsidised", "subsidised_covered",
                           "subsidised_coverage"])
    print("\n" + text("grids", lang))
    table(r["lowest_grids"], ["grid", "name", "residents", "covered", "coverage", "gaps"])
    print("\n" + text("reasons", lang))
    def label(reason: str) -> str:  # the reason in the report's language (the web's and the API's words)
        said = web_labels.reason(reason, lang)
        return said if said != reason else r["gap_labels"].get(reason, "")

    table([{"reason": k, "label": label(k), "people": v}
           for k, v in sorted(r["gaps_by_reason"].items(), key=lambda kv: -kv[1])], ["label", "people", "reason"])
    who = ["masked_name", "masked_id", "grid_code", "label", "reason"]

    def people(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**g, "masked_name": g.get("name") or "", "label": label(g["reason"])} for g in rows]

    print("\n" + text("subsidised_missing", lang, n=len(r["subsidised_missing"])))
    table(people(r["subsidised_missing"]), who)
    print("\n" + text("gap_top", lang, n=len(r["gap_top"])))
    table(people(r["gap_top"]), who)
    a = r["arrears"]
    print("\n" + text("arrears", lang, as_of=r["as_of"], rows=a["rows"], outstanding=yuan(a["outstanding_fen"]),
                      late_fee=yuan(a["late_fee_fen"]), fee_only=a.get("fee_only_rows", 0),
                      by_kind=_kv(a["by_kind"], lang)))
    t = r.get("transfers")
    if t:
        print("\n" + text("transfers", lang, region=t["region"], as_of=r["as_of"], incoming=t["incoming_open"],
                          outgoing=t["outgoing_open"], overdue=t["overdue"], done=t["done"]))
        table([{**o, "direction": term(o["direction"], lang)} for o in t["open_top"]],
              ["transfer_id", "direction", "masked_id", "from", "to", "due_on", "overdue_days"])
    if "reconciliation" in r:
        _print_reconciliation(r["reconciliation"], table, lang, details=check)
    if "cases" in r:
        _print_cases(r["cases"], table, lang)
    h = r["history"]
    print("\n" + text("history", lang, masked_id=h["masked_id"]))
    rows = []
    for e in h["report"]["events"]:
        st = e.get("state_after") or {}
        rows.append({"v": e["version"], "recorded_at": str(e["recorded_at"])[:16].replace("T", " "),
                     "effective": e["effective_date"],
                     "what": e.get("description_zh") or e["description"] if lang == "zh" else english(e["description"]),
                     "due": _yuan_or_blank(st.get("due_fen")), "paid": _yuan_or_blank(st.get("net_paid_fen")),
                     "covered_from": st.get("covered_from") or "", "balance": _yuan_or_blank(st.get("account_balance_fen"))})
    # The description goes last, whole: a terminal wraps it rather than the table cutting it mid-word.
    table(rows, ["v", "recorded_at", "effective", "due", "paid", "covered_from", "balance", "what"])
    print("\n" + text("published", lang, n=r["published_events"]))
    _print_checks(result, lang, figures=check)
    print("\n" + text("timings", lang, timings=_kv({k: f"{v:.2f}" for k, v in result.seconds.items()}, lang)))
    if result.next_steps:
        print("\n" + text("next_steps", lang, state_dir=result.state_dir, **result.next_steps))


def _print_reconciliation(rec: dict[str, Any], table: Any, lang: str = "zh", *, details: bool = True) -> None:
    """The reconciliation: one line and the per-county table; with ``details`` (``--check``) per office, per
    discrepancy class against the generator's, and the open discrepancies."""
    def money(row: dict[str, Any], *keys: str) -> dict[str, Any]:
        return {**row, **{k[:-4]: yuan(row[k]) for k in keys},
                "ties_out": text("yes", lang) if row["ties_out"] == "yes" else f"{text('no', lang)} {row['ties_out'][2:]}".strip()}

    print("\n" + text("recon", lang, statements=rec["statements_sent"], records=rec["records_sent"],
                      states=_kv(rec["states"], lang), errors=_kv(rec["intake_errors"], lang)))
    print(text("recon_counties", lang))
    table([money(c, "collected_fen", "recorded_fen", "difference_fen", "explained_fen") for c in rec["counties"]],
          ["region", "days", "statements", "collected", "recorded", "difference", "explained", "ties_out"])
    for region in sorted({c["region"] for c in rec["counties"]} & PLACES.keys()):
        print(text("foreign_region", lang, region=region, place=PLACES[region][lang]))
    if not details:
        return
    print(text("recon_offices", lang))
    table([money(o, "collected_fen", "recorded_fen", "difference_fen", "explained_fen") for o in rec["offices"]],
          ["region", "office", "statements", "lines", "collected", "recorded", "difference", "explained",
           "ties_out"])
    print(text("recon_classes", lang))
    expected = rec.get("expected_by_class", {})
    table([{"class": k, "found": rec["open_by_class"].get(k, {}).get("count", 0), "expected": expected.get(k, 0),
            "delta": yuan(rec["open_by_class"].get(k, {}).get("delta_fen", 0), sign=True)}
           for k in sorted(set(rec["open_by_class"]) | set(expected))], ["class", "found", "expected", "delta"])
    if rec["open"]:
        print(text("recon_open", lang))
        table([{**d, "delta": yuan(d["delta_fen"], sign=True)} for d in rec["open"][:20]],
              ["class", "business_date", "office", "region", "voucher_no", "line_no", "delta_count", "delta"])


def _chart(result: DemoResult, path: str, lang: str = "zh", *, quiet_stdout: bool = False) -> None:
    """Coverage and subsidised coverage per township: PNG, or SVG when the name ends ``.svg``."""
    year = result.report["coverage_year"]
    # the target line: the policy table's coverage target (参保目标), as on the county dashboard
    townships = result.report["townships"]
    target = (wiring.policy_book().get(str(townships[0]["township"])[:6], year).resident.coverage_target_bp
              if townships else None)
    svg = path.lower().endswith(".svg")
    body = coverage_chart(townships, year, lang=lang, svg=svg, target_bp=target, place=result.region_name,
                          as_of=result.report.get("as_of"))
    Path(path).write_bytes(body)
    said = (text("chart_target", lang, percent=f"{target / 100:.2f}%") if target is not None
            else text("chart_no_target", lang))
    # on stderr under ``--json``, which owns stdout
    print(catalogue.text("chart", "written", lang, path=path) + " " + said, file=sys.stderr if quiet_stdout else sys.stdout)


def run_demo(*, people: int = 3000, seed: int = 2025, json_output: bool = False, chart: str | None = None,
             lang: str = "zh", check: bool = False) -> int:
    """The README's main command: the county's story. Exit 0 when the ledger matched the generator's truth;
    ``check`` (``--check``) also prints each check's figures, for the developer."""
    if people < 100:
        raise DomainError("COUNT_INVALID", "--people must be at least 100 (the county needs every scenario)")
    result = run_pipeline(people, seed, quiet=json_output)
    if json_output:
        print(json.dumps({"people": result.people, "seed": result.seed, "store": result.store,
                          "transport": result.transport, "seconds": result.seconds, "report": result.report,
                          "checks": result.checks, "ok": result.ok, "state_dir": result.state_dir}, ensure_ascii=False, indent=2, default=str))
    else:
        _print_report(result, lang, check=check)
    if chart:
        _chart(result, chart, lang, quiet_stdout=json_output)
    return 0 if result.ok else 1



@command(wiring=None)  # the demo builds its own system, on a fresh state directory
def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(people=args.people, seed=args.seed, json_output=args.json, chart=args.chart,
                    lang=lang_of(args.lang), check=args.check)


def add_demo_command(sub: Any) -> None:
    """Add ``ledger demo`` (its help line: :data:`entrypoints.main.COMMANDS`)."""
    p = sub.add_parser("demo", help=help_of("demo"))
    p.add_argument("--people", type=int, default=3000)
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--chart", metavar="PNG", help="also draw coverage per township into this image file "
                   "(PNG; SVG when the name ends .svg)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="the report's language (default: zh, 中文)")
    p.add_argument("--check", action="store_true", help="also print each truth check's figures (the ledger "
                   "against the generator's own figures); the exit code is 1 when one disagrees (核对明细)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)


__all__ = ["DemoResult", "add_demo_command", "feed_record_bytes", "feed_record_key", "malformed_record_bytes",
           "rejection_codes", "run_demo", "run_pipeline", "truth_checks"]
