"""The ``ledger`` command: the local stack, policy tables, people, and the demo.

Readable tables by default, ``--json`` for machines. Errors a user can cause print
their code and message and exit 2; nothing is half-written.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any, Callable, Sequence

from ledger.domain.errors import DomainError
from ledger.log import mask_id_number


def _print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def _emit(args: argparse.Namespace, payload: Any, render: Callable[[Any], None]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        render(payload)


# ------------------------------------------------------------------ infra
def cmd_infra(args: argparse.Namespace) -> int:
    from infra import stack

    return stack.main([args.action, *(["--clean"] if args.clean else [])])


# ------------------------------------------------------------------ policy
def cmd_policy(args: argparse.Namespace) -> int:
    from ledger.policy import PolicyBook

    book = PolicyBook.load()
    if args.region is None:
        rows = [
            {"region": r, "years": ",".join(str(y) for y in book.years(r))}
            for r in sorted(book.regions())
        ]
        _emit(args, rows, lambda rs: _print_table(rs, ["region", "years"]))
        return 0
    table = book.get(args.region, args.year)
    payload = {
        "region_code": table.region_code,
        "coverage_year": table.coverage_year,
        "policy_version": table.policy_version,
        "status": table.status,
        "source": table.source,
        "individual_share_fen": table.resident.individual_share_fen,
        "fiscal_subsidy_fen": table.resident.fiscal_subsidy_fen,
        "concentrated_period": f"{table.resident.concentrated_start}..{table.resident.concentrated_end}",
        "extended_window_end": table.resident.extended_window_end,
        "subsidies": {c: r.describe() for c, r in table.resident.subsidies.items()},
        "waiting_enabled": table.resident.waiting.enabled,
        "employee_rates_bp": {"employer": table.employee.employer_rate_bp, "employee": table.employee.employee_rate_bp},
    }

    def render(p: dict[str, Any]) -> None:
        for k, v in p.items():
            print(f"{k:24} {v}")

    _emit(args, payload, render)
    return 0


# ------------------------------------------------------------------ person
def cmd_person(args: argparse.Namespace) -> int:
    from ledger.bootstrap import bootstrap

    system = bootstrap()
    try:
        person = system.ledger.find_person(args.id_type, args.id_number)
        shown_id = person.id_number if args.reveal else mask_id_number(person.id_number)
        payload = {
            "person_id": str(person.id),
            "id_type": person.id_type,
            "id_number": shown_id,
            "name": person.name,
            "birth_date": person.birth_date,
            "household_grid": person.household_grid,
            "residence": person.residence_status,
            "enrollments": person.enrollments,
            "assessments": person.assessments,
            "paid_fen": {period: person.paid_fen_for(period) for period in person.assessments},
            "subsidies": list(person.subsidies.values()),
            "account_balance_fen": person.account_balance_fen,
            "contribution_months": person.contribution_months,
            "events": person.version,
        }

        def render(p: dict[str, Any]) -> None:
            for k in ("person_id", "id_type", "id_number", "name", "birth_date", "household_grid", "residence",
                      "account_balance_fen", "contribution_months", "events"):
                print(f"{k:22} {p[k]}")
            print("\nenrollments:")
            _print_table(p["enrollments"], ["enrollment_id", "scheme", "region_code", "grid_code", "start_date",
                                            "end_date", "end_reason", "duplicate_of"])
            print("\nassessments:")
            _print_table([{**a, "paid_fen": p["paid_fen"][a["period"]]} for a in p["assessments"].values()],
                         ["period", "standard_fen", "subsidy_fen", "due_fen", "paid_fen", "due_date",
                          "subsidy_category", "policy_version"])

        _emit(args, payload, render)
    finally:
        system.close()
    return 0


# ------------------------------------------------------------------ demo
def cmd_demo(args: argparse.Namespace) -> int:
    from ledger.demo import run_demo

    return run_demo(people=args.people, seed=args.seed, json_output=args.json, chart=args.chart)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("infra", help="start, stop or inspect the local Kafka + PostgreSQL stack")
    p.add_argument("action", choices=["up", "down", "status", "env"])
    p.add_argument("--clean", action="store_true", help="with down: wipe the Kafka and PostgreSQL data")
    p.set_defaults(func=cmd_infra)

    p = sub.add_parser("policy", help="list policy tables, or show one region's table for a year")
    p.add_argument("region", nargs="?")
    p.add_argument("year", nargs="?", type=int, default=date.today().year)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("person", help="show one person's ledger state")
    p.add_argument("id_number")
    p.add_argument("--id-type", default="RESIDENT_ID")
    p.add_argument("--reveal", action="store_true", help="show the full ID number (clerks and auditors only)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_person)

    p = sub.add_parser("demo", help="generate a small county and run it through the ledger (embedded, no servers)")
    p.add_argument("--people", type=int, default=3000)
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--chart", metavar="PNG", help="also draw coverage per township into this image file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DomainError as e:
        print(f"error {e.code}: {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
