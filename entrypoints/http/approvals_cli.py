"""``ledger clerk propose-merge | pending | change | approve | reject``: maker-checker (双人复核) on the command line.

The same rules and codes as the API (:mod:`entrypoints.http.approvals`): a clerk's token in
``LEDGER_TOKEN`` proposes, an approver's token (role ``approver``, the region's code as scope)
approves or rejects, never the clerk who proposed (``APPROVAL_BY_MAKER``). ``end-enrollment``,
and ``payment-correction`` / ``account-debit`` above the policy's threshold, propose too.
"""
from __future__ import annotations

import argparse
import uuid
from typing import Any

from pydantic import ValidationError

from entrypoints import catalogue
from entrypoints.command import Answer, command
from entrypoints.http import approvals as ap
from entrypoints.http.access import cli_principal
from entrypoints.http.errors import validation_problems
from ledger.domain.errors import DomainError
from ledger.inbound_records import Provenance


def _request_id(args: argparse.Namespace) -> str:
    return getattr(args, "request_id", None) or f"cli-{uuid.uuid4().hex[:12]}"


def _provenance(who: Any, request_id: str, key: str) -> Provenance:
    return Provenance(source="cli", user=who.user, request_id=request_id, record_key=key)


def _validated(body_class: Any, values: dict[str, Any]) -> Any:
    try:
        return body_class.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as e:
        first = validation_problems(list(e.errors()), where="body")[0]
        raise DomainError(first["code"], first["message"]) from None


def _say(key: str, lang: str, **values: Any) -> str:
    """A text of the maker-checker commands' answers (catalogue section ``fees_out``, shared with the fee commands)."""
    return catalogue.text("fees_out", key, lang, **values)


def render_change(a: dict[str, Any], lang: str = catalogue.DEFAULT_LANG) -> None:
    """The change's answer; the change itself is :func:`approvals.change_line`'s line, in ``lang``."""
    if a["status"] == "PENDING":
        print(_say("proposed" if a["applied"] else "proposed_before", lang, message=ap.change_line(a, lang)))
        print(_say("approve_hint", lang, change=a["change_id"]))
    else:
        print(_say("decided" if a["applied"] else "decided_before", lang,
                   status=catalogue.text("approvals_lines", f"{'done' if a['applied'] else 'status'}.{a['status']}", lang),
                   message=ap.change_line(a, lang)))
        if a.get("event_ids"):
            print(_say("events", lang, events=", ".join(a["event_ids"])))


def _merge_check(args: argparse.Namespace) -> tuple[Any, Any]:
    who = cli_principal(purpose="this command writes to the ledger")
    body = _validated(ap.MergeIn, {"merged_id_type": args.merged_id_type, "merged_id_number": args.merged_id_number,
                                   "merge_kind": args.merge_kind, "reason": args.reason})
    return who, body


@command(check=_merge_check)
def cmd_propose_merge(args: argparse.Namespace, system: Any, checked: tuple[Any, Any]) -> Answer:
    who, body = checked
    answer = ap.propose_merge(system.ledger, who, args.id_type, args.id_number, body,
                              provenance=_provenance(who, _request_id(args), "merge"))
    return Answer(answer, lambda a: render_change(a, catalogue.lang_of(getattr(args, "lang", None))))


def _reader(args: argparse.Namespace) -> Any:
    who = cli_principal(purpose="this command shows pending changes")
    ap.visible_regions(who)  # ROLE_FORBIDDEN before anything is opened
    return who


@command(check=_reader)
def cmd_pending(args: argparse.Namespace, system: Any, who: Any) -> Answer:
    rows = ap.list_changes(system.ledger, who, region=args.region, status=args.status)

    def render(rs: list[dict[str, Any]]) -> None:
        lang = catalogue.lang_of(getattr(args, "lang", None))
        label = (_say("all", lang) if args.status == "ALL"
                 else catalogue.text("approvals_lines", f"status.{args.status}", lang))
        print(_say("pending_total", lang, label=label, n=len(rs)))
        for r in rs:
            print(f"  {ap.change_line(r, lang)}")

    return Answer(rows, render)


@command(check=_reader)
def cmd_change(args: argparse.Namespace, system: Any, who: Any) -> Answer:
    regions = ap.visible_regions(who)
    service = ap.service(system.ledger)
    change = service.get(args.change_id)
    if regions is not None and change.region_code not in regions:
        who.require_region(change.region_code, action="read")
    row = change.as_dict(service.clock())
    return Answer(row, lambda r: print(ap.change_line(r, catalogue.lang_of(getattr(args, "lang", None)))))


def _approver(args: argparse.Namespace) -> Any:
    return cli_principal(purpose="this command decides a pending change")


@command(check=_approver)
def cmd_approve(args: argparse.Namespace, system: Any, who: Any) -> Answer:
    body = _validated(ap.ApproveIn, {"note": args.note})
    answer = ap.approve(system.ledger, who, args.change_id, note=body.note,
                        provenance=_provenance(who, _request_id(args), f"change:{args.change_id}"))
    return Answer(answer, lambda a: render_change(a, catalogue.lang_of(getattr(args, "lang", None))))


@command(check=_approver)
def cmd_reject(args: argparse.Namespace, system: Any, who: Any) -> Answer:
    body = _validated(ap.RejectIn, {"reason": args.reason})
    answer = ap.reject(system.ledger, who, args.change_id, body,
                       provenance=_provenance(who, _request_id(args), f"change:{args.change_id}"))
    return Answer(answer, lambda a: render_change(a, catalogue.lang_of(getattr(args, "lang", None))))


def add_approval_clerk_commands(clerk_sub: Any) -> None:
    """``ledger clerk propose-merge``, ``pending``, ``change``, ``approve``, ``reject``."""
    c = clerk_sub.add_parser("propose-merge", help="propose merging another record into this person (参保人合并)",
                             description=ap.MergeIn.__doc__)
    c.add_argument("--id-type", default="RESIDENT_ID", help="the person kept: ID type (证件类型)")
    c.add_argument("--id-number", required=True, help="the person kept: ID number (保留的证件号码)")
    c.add_argument("--merged-id-type", default="RESIDENT_ID", help="the record merged away: ID type")
    c.add_argument("--merged-id-number", required=True, help="the record merged away: ID number (被合并的证件号码)")
    c.add_argument("--merge-kind", required=True, choices=list(ap.MERGE_KINDS),
                   help="DUPLICATE (重复登记), ID_UPGRADE (15 位升 18 位), ID_CORRECTION (证件号码更正)")
    c.add_argument("--reason", required=True, help="why (合并说明)")
    c.add_argument("--request-id", help="the change id; resend with the same one to do nothing twice")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_propose_merge)

    c = clerk_sub.add_parser("pending", help="changes waiting for a second clerk (待审核变更)")
    c.add_argument("--region", help="6-digit region code (default: all of yours)")
    c.add_argument("--status", default="PENDING", choices=["PENDING", "APPROVED", "REJECTED", "EXPIRED", "ALL"])
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_pending)

    c = clerk_sub.add_parser("change", help="one change (变更详情)")
    c.add_argument("change_id")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_change)

    for name, func, summary in (("approve", cmd_approve, "approve and carry out a change (审核通过), as an approver"),
                                ("reject", cmd_reject, "reject a change (驳回), as an approver")):
        c = clerk_sub.add_parser(name, help=summary, description=summary)
        c.add_argument("change_id")
        if name == "reject":
            c.add_argument("--reason", required=True, help="why (驳回理由)")
        else:
            c.add_argument("--note", help="the approver's note (审核意见), optional")
        c.add_argument("--request-id", help="this decision's request id")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)


__all__ = ["add_approval_clerk_commands", "render_change"]
