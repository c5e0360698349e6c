"""The comparison itself: one statement against the ledger's rows of its scope, as a pure function.

Inputs: the statement's lines, the ledger rows of the scope (same business date, tax
office and region) and a :class:`Context` of lookups outside the scope (the ledger
rows of the statement's vouchers recorded elsewhere, vouchers listed on other current
statements, original vouchers known anywhere). Output: the discrepancies, and the
totals that must tie out.

Vouchers are paired by ``(tax_office, voucher_no)``; a statement's lines all belong
to its header's office. Each pair is classified by the first rule that holds:

1. every line of a voucher after the first (lowest line number) on the same statement
   is DUPLICATE_VOUCHER (occurrence 2, 3, ...);
2. a ledger row of the scope with no line: listed on another current statement of
   another region -> PERSON_OR_REGION_MISMATCH, of another date ->
   BUSINESS_DATE_MISMATCH, on none -> MISSING_IN_STATEMENT;
3. a line and a ledger row of the scope: another person -> PERSON_OR_REGION_MISMATCH;
   another signed amount -> AMOUNT_MISMATCH; another levy item, kind, period or
   payment date -> DETAIL_MISMATCH; else they match;
4. a line whose voucher the ledger has outside the scope: already on the current
   statement of that scope -> DUPLICATE_VOUCHER; another region or person ->
   PERSON_OR_REGION_MISMATCH; else (another date) -> BUSINESS_DATE_MISMATCH;
5. a line the ledger does not have at all: a refund or reversal whose original voucher
   is unnamed or unknown -> REFUND_WITHOUT_ORIGINAL; else MISSING_IN_LEDGER.

Each discrepancy carries what it does to the totals, ``statement - ledger`` in this
scope, per levy item: a line adds ``(+1, +signed amount)`` under its levy item, a
ledger row of the scope ``(-1, -signed amount)`` under its own. Because every line and
every ledger row of the scope belongs to exactly one pair, and a matched pair adds
nothing, **statement total - ledger total = sum of the discrepancies' deltas**, for
counts and fen, per levy item and overall. :func:`tie_out` checks it from totals
computed independently of the classification (in the store, by SQL aggregates).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from reconciliation.model import (
    Discrepancy,
    DiscrepancyClass,
    LedgerPayment,
    Scope,
    StatementHeader,
    StatementLine,
    discrepancy_id,
)

C = DiscrepancyClass
Key = tuple[str, str]


@dataclass(frozen=True)
class Listing:
    """A voucher listed on another current statement."""

    statement_id: str
    scope: Scope
    line_no: int


@dataclass
class Context:
    """What the comparison needs to know beyond the scope."""

    #: ledger rows of the statement's vouchers that lie outside the scope
    elsewhere: Mapping[Key, LedgerPayment] = field(default_factory=dict)
    #: vouchers (of the scope's rows or of the statement's lines) listed on another current statement
    listed: Mapping[Key, Listing] = field(default_factory=dict)
    #: original vouchers known to the ledger or listed on a current statement
    originals: AbstractSet[Key] = frozenset()


@dataclass(frozen=True)
class Pair:
    """One voucher: its lines on the statement (by line number) and its ledger row in the scope."""

    key: Key
    lines: tuple[StatementLine, ...]
    row: LedgerPayment | None

    def matches(self) -> bool:
        """One line and a ledger row that agree on everything compared: no discrepancy."""
        return len(self.lines) == 1 and self.row is not None and not differences(self.lines[0], self.row)


@dataclass(frozen=True)
class Totals:
    count: int = 0
    fen: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.count + other.count, self.fen + other.fen)

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.count - other.count, self.fen - other.fen)

    def as_list(self) -> list[int]:
        return [self.count, self.fen]


def pair_up(lines: Iterable[StatementLine], rows: Iterable[LedgerPayment], tax_office: str) -> list[Pair]:
    """Every voucher of the statement and of the scope's ledger rows, paired (in voucher order)."""
    by_key: dict[Key, list[StatementLine]] = {}
    for line in lines:
        by_key.setdefault((tax_office, line.voucher_no), []).append(line)
    row_by_key = {row.key: row for row in rows}
    keys = sorted(set(by_key) | set(row_by_key))
    return [Pair(k, tuple(sorted(by_key.get(k, ()), key=lambda line: line.line_no)), row_by_key.get(k)) for k in keys]


def differences(line: StatementLine, row: LedgerPayment) -> list[str]:
    """Fields of a voucher that the statement and the ledger give differently."""
    out = []
    if line.person_id != row.person_id:
        out.append("person")
    if line.signed_fen != row.signed_fen:
        out.append("amount_fen" if line.kind == row.kind else "amount_fen,kind")
    elif line.kind != row.kind:
        out.append("kind")
    if line.levy_item != row.levy_item:
        out.append("levy_item")
    if (line.period_start, line.period_end) != (row.period_start, row.period_end):
        out.append("period")
    if line.business_date != row.business_date:
        out.append("business_date")
    return out


def _line_view(line: StatementLine) -> dict[str, Any]:
    return {"line_no": line.line_no, "kind": line.kind, "levy_item": line.levy_item, "amount_fen": line.amount_fen,
            "paid_at": line.paid_at.isoformat(), "business_date": line.business_date.isoformat(),
            "period": f"{line.period_start.isoformat()}..{line.period_end.isoformat()}",
            "masked_id": line.masked_id, "person_id": line.person_id,
            "original_voucher_no": line.original_voucher_no}


def _row_view(row: LedgerPayment) -> dict[str, Any]:
    return {"scope": row.scope.key, "kind": row.kind, "levy_item": row.levy_item, "amount_fen": row.amount_fen,
            "paid_at": row.paid_at.isoformat(), "business_date": row.business_date.isoformat(),
            "region_code": row.region_code, "period": f"{row.period_start.isoformat()}..{row.period_end.isoformat()}",
            "person_id": row.person_id, "event_id": row.event_id}


def _by_scheme(line: StatementLine | None, row: LedgerPayment | None) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    if line is not None:
        t = out.setdefault(line.levy_item, [0, 0])
        t[0] += 1
        t[1] += line.signed_fen
    if row is not None:
        t = out.setdefault(row.levy_item, [0, 0])
        t[0] -= 1
        t[1] -= row.signed_fen
    return {k: (v[0], v[1]) for k, v in sorted(out.items()) if v != [0, 0]}


def _make(scope: Scope, statement_id: str, klass: DiscrepancyClass, key: Key, *, occurrence: int = 1,
          line: StatementLine | None = None, row: LedgerPayment | None = None,
          details: dict[str, Any] | None = None) -> Discrepancy:
    """A discrepancy of ``line`` (its signed amount counts for the statement) and ``row`` (a ledger row of the
    scope, counted against); a row outside the scope is only described in ``details``."""
    by_scheme = _by_scheme(line, row)
    info: dict[str, Any] = {}
    if line is not None:
        info["statement"] = _line_view(line)
    if row is not None:
        info["ledger"] = _row_view(row)
    info.update(details or {})
    return Discrepancy(
        id=discrepancy_id(scope, klass.value, key[0], key[1], occurrence), scope=scope, statement_id=statement_id,
        klass=klass, tax_office=key[0], voucher_no=key[1], occurrence=occurrence,
        line_no=None if line is None else line.line_no,
        statement_fen=None if line is None else line.signed_fen, ledger_fen=None if row is None else row.signed_fen,
        delta_count=sum(c for c, _ in by_scheme.values()), delta_fen=sum(f for _, f in by_scheme.values()),
        by_scheme=by_scheme, details=info,
    )


def classify(scope: Scope, statement_id: str, pairs: Iterable[Pair],
             context: Context | None = None) -> list[Discrepancy]:
    """The discrepancies of a scope's pairs (matched pairs give none), in voucher order."""
    context = context or Context()
    out: list[Discrepancy] = []
    for pair in pairs:
        key, row = pair.key, pair.row
        primary = pair.lines[0] if pair.lines else None
        for n, extra in enumerate(pair.lines[1:], start=2):
            first = pair.lines[0].line_no
            out.append(_make(scope, statement_id, C.DUPLICATE_VOUCHER, key, occurrence=n, line=extra,
                             details={"note": f"line {extra.line_no} repeats voucher {key[1]} of line {first}",
                                      "first_line_no": first}))
        if primary is None:
            assert row is not None
            listing = context.listed.get(key)
            if listing is None:
                out.append(_make(scope, statement_id, C.MISSING_IN_STATEMENT, key, row=row,
                                 details={"note": "recorded by the ledger, not on the statement"}))
                continue
            klass = (C.PERSON_OR_REGION_MISMATCH if listing.scope.region_code != scope.region_code
                     else C.BUSINESS_DATE_MISMATCH)
            out.append(_make(scope, statement_id, klass, key, row=row, details={
                "note": f"the ledger has it here; statement {listing.statement_id} lists it under {listing.scope.key}",
                "listed_on": {"statement_id": listing.statement_id, "scope": listing.scope.key,
                              "line_no": listing.line_no}}))
            continue
        if row is not None:
            diffs = differences(primary, row)
            if not diffs:
                continue
            if "person" in diffs:
                klass = C.PERSON_OR_REGION_MISMATCH
            elif diffs[0].startswith("amount_fen"):
                klass = C.AMOUNT_MISMATCH
            else:
                klass = C.DETAIL_MISMATCH
            out.append(_make(scope, statement_id, klass, key, line=primary, row=row, details={"differs": diffs}))
            continue
        other = context.elsewhere.get(key)
        if other is not None:
            listing = context.listed.get(key)
            if listing is not None and listing.scope == other.scope:
                klass = C.DUPLICATE_VOUCHER
                note = (f"also on statement {listing.statement_id} (line {listing.line_no}) of {other.scope.key}, "
                        "where the ledger has it")
            elif other.region_code != scope.region_code or other.person_id != primary.person_id:
                klass = C.PERSON_OR_REGION_MISMATCH
                who = "another person" if other.person_id != primary.person_id else f"region {other.region_code}"
                note = f"the ledger has it for {who}"
            else:
                klass = C.BUSINESS_DATE_MISMATCH
                note = f"the ledger has it on {other.business_date.isoformat()}"
            out.append(_make(scope, statement_id, klass, key, occurrence=1, line=primary,
                             details={"note": note, "ledger_elsewhere": _row_view(other),
                                      "differs": differences(primary, other)}))
            continue
        if primary.kind != "PAYMENT":
            original = (primary.original_tax_office or scope.tax_office, primary.original_voucher_no)
            if primary.original_voucher_no is None or original not in context.originals:
                out.append(_make(scope, statement_id, C.REFUND_WITHOUT_ORIGINAL, key, line=primary, details={
                    "note": ("names no original voucher" if primary.original_voucher_no is None else
                             f"original voucher {original[1]} (office {original[0]}) is unknown"),
                    "original": None if primary.original_voucher_no is None else f"{original[0]}|{original[1]}"}))
                continue
        out.append(_make(scope, statement_id, C.MISSING_IN_LEDGER, key, line=primary,
                         details={"note": "on the statement, not recorded by the ledger"}))
    return out


# --------------------------------------------------------------------------- totals
def totals_by_scheme(items: Iterable[StatementLine | LedgerPayment]) -> dict[str, Totals]:
    out: dict[str, Totals] = {}
    for item in items:
        out[item.levy_item] = out.get(item.levy_item, Totals()) + Totals(1, item.signed_fen)
    return out


@dataclass(frozen=True)
class TieOut:
    """Statement total - ledger total = the sum of the listed differences, per levy item and overall."""

    statement: dict[str, Totals]
    ledger: dict[str, Totals]
    explained: dict[str, Totals]
    by_class: dict[str, Totals]

    @property
    def schemes(self) -> list[str]:
        return sorted(set(self.statement) | set(self.ledger) | set(self.explained))

    def difference(self, scheme: str | None = None) -> Totals:
        if scheme is None:
            return _sum(self.statement.values()) - _sum(self.ledger.values())
        return self.statement.get(scheme, Totals()) - self.ledger.get(scheme, Totals())

    def explained_total(self, scheme: str | None = None) -> Totals:
        return _sum(self.explained.values()) if scheme is None else self.explained.get(scheme, Totals())

    @property
    def ok(self) -> bool:
        return all(self.difference(s) == self.explained_total(s) for s in [*self.schemes, None])

    def as_dict(self) -> dict[str, Any]:
        def per(d: Mapping[str, Totals]) -> dict[str, list[int]]:
            return {k: v.as_list() for k, v in sorted(d.items())}

        return {
            "ok": self.ok,
            "statement": per(self.statement), "ledger": per(self.ledger), "explained": per(self.explained),
            "by_class": per(self.by_class),
            "total": {"statement": _sum(self.statement.values()).as_list(),
                      "ledger": _sum(self.ledger.values()).as_list(),
                      "difference": self.difference().as_list(), "explained": self.explained_total().as_list()},
        }

    def arithmetic(self) -> list[str]:
        """The tie-out written out, one line per levy item and one overall (amounts in yuan)."""
        lines = []
        for scheme in [*self.schemes, None]:
            s = _sum(self.statement.values()) if scheme is None else self.statement.get(scheme, Totals())
            g = _sum(self.ledger.values()) if scheme is None else self.ledger.get(scheme, Totals())
            d, e = self.difference(scheme), self.explained_total(scheme)
            mark = "ties out" if d == e else "DOES NOT TIE OUT"
            lines.append(f"{scheme or 'TOTAL':9} statement {yuan(s.fen)} ({s.count}) - ledger {yuan(g.fen)} "
                         f"({g.count}) = {yuan(d.fen)} ({d.count:+d}); differences explain {yuan(e.fen)} "
                         f"({e.count:+d}): {mark}")
        parts = [f"{k} {yuan(v.fen, sign=True)} ({v.count:+d})" for k, v in sorted(self.by_class.items())]
        lines.append("differences: " + (" + ".join(parts) if parts else "none"))
        return lines


def _sum(items: Iterable[Totals]) -> Totals:
    out = Totals()
    for t in items:
        out = out + t
    return out


def yuan(fen: int, *, sign: bool = False) -> str:
    """Fen as yuan with two decimals, computed on integers (no float rounding)."""
    negative = fen < 0
    whole, cents = divmod(abs(fen), 100)
    text = f"{whole:,}.{cents:02d}"
    return ("-" if negative else ("+" if sign else "")) + text


def tie_out(statement: Mapping[str, Totals], ledger: Mapping[str, Totals],
            discrepancies: Sequence[Discrepancy]) -> TieOut:
    explained: dict[str, Totals] = {}
    by_class: dict[str, Totals] = {}
    for d in discrepancies:
        for scheme, (count, fen) in d.by_scheme.items():
            explained[scheme] = explained.get(scheme, Totals()) + Totals(count, fen)
        by_class[d.klass.value] = by_class.get(d.klass.value, Totals()) + Totals(d.delta_count, d.delta_fen)
    return TieOut(dict(statement), dict(ledger), explained, by_class)


@dataclass(frozen=True)
class Reconciliation:
    """The result of comparing one statement with the ledger."""

    scope: Scope
    statement_id: str
    discrepancies: list[Discrepancy]
    totals: TieOut
    header_total_fen: int | None = None

    @property
    def header_total_ok(self) -> bool:
        return self.header_total_fen is None or self.header_total_fen == _sum(self.totals.statement.values()).fen


def reconcile(header: StatementHeader, lines: Sequence[StatementLine], rows: Sequence[LedgerPayment],
              context: Context | None = None) -> Reconciliation:
    """Compare a statement with the ledger rows of its scope (``rows`` outside the scope are ignored)."""
    scope = header.scope
    in_scope = [r for r in rows if r.scope == scope]
    pairs = [p for p in pair_up(lines, in_scope, scope.tax_office) if not p.matches()]
    found = classify(scope, header.statement_id, pairs, context)
    return Reconciliation(scope, header.statement_id, found,
                          tie_out(totals_by_scheme(lines), totals_by_scheme(in_scope), found), header.total_amount_fen)


__all__ = ["Context", "Listing", "Pair", "Reconciliation", "TieOut", "Totals", "classify", "differences",
           "pair_up", "reconcile", "tie_out", "totals_by_scheme", "yuan"]
