"""The printable audit report (审计报告): one person's history as an HTML page an auditor can file.

:func:`render_html` takes the plain report of
:func:`entrypoints.audit.replay.history_report` and returns a self-contained HTML page
(no scripts, no external resources) with print CSS for A4: the person's masked ID,
the verification result, the as-of comparison (when an instant was asked), the
history table with the state after each event, and the time and ledger position the
report was computed at. The ID number is always masked here (个人信息保护法).
"""
from __future__ import annotations

from html import escape
from typing import Any

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", Arial, sans-serif;
       font-size: 9.5pt; color: #111; margin: 0 auto; max-width: 190mm; line-height: 1.35; }
h1 { font-size: 15pt; margin: 0 0 2mm 0; }
h2 { font-size: 11.5pt; margin: 6mm 0 2mm 0; border-bottom: 0.4pt solid #444; padding-bottom: 1mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm 0; }
th, td { border: 0.4pt solid #888; padding: 1mm 1.5mm; vertical-align: top; text-align: left; }
th { background: #eee; font-weight: 600; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
td.num, th.num { text-align: right; white-space: nowrap; }
.meta td { border: none; padding: 0.5mm 2mm 0.5mm 0; }
.small { font-size: 8pt; color: #333; }
.mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 8pt; word-break: break-all; }
.ok { color: #145a14; font-weight: 600; }
.bad { color: #a00000; font-weight: 600; }
.state { font-size: 8pt; }
footer { margin-top: 6mm; font-size: 8pt; color: #333; border-top: 0.4pt solid #888; padding-top: 1mm; }
@media print { a { color: inherit; text-decoration: none; } .noprint { display: none; } }
"""

FIGURE_LABELS = {
    "enrolled_in": "enrolled in",
    "residence_status": "residence",
    "account_balance_fen": "account balance (yuan)",
    "contribution_months": "contribution months",
    "scheme": "scheme",
    "region_code": "region",
    "enrollment_state": "enrollment",
    "standard_fen": "standard (yuan)",
    "subsidy_fen": "subsidy (yuan)",
    "subsidy_category": "subsidised group",
    "due_fen": "due (yuan)",
    "due_date": "due by",
    "net_paid_fen": "paid, net (yuan)",
    "refunded_fen": "refunded (yuan)",
    "reversed_fen": "reversed (yuan)",
    "outstanding_fen": "outstanding (yuan)",
    "overpayment_fen": "overpaid (yuan)",
    "funded": "funded",
    "covered_from": "covered from",
    "covered_to": "covered to",
    "coverage_periods": "coverage periods",
    "waiting_until": "waiting until",
    "continuous_years": "continuous years",
    "policy_version": "policy version",
}


def yuan(fen: Any) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def figure_text(name: str, value: Any) -> str:
    """A figure of the state as a person reads it."""
    if value is None:
        return "—"
    if name.endswith("_fen"):
        return yuan(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "coverage_periods":
        if not value:
            return "none"
        return ", ".join(f"{p[0]} – {p[1]}" if isinstance(p, (list, tuple)) else str(p) for p in value)
    return str(value)


def state_line(state: dict[str, Any]) -> str:
    """The state after a step, in one line (the CLI and the HTML use it)."""
    covered = "—"
    if state.get("covered_from"):
        covered = f"{state['covered_from']} – {state['covered_to']}"
    parts = [
        f"{state.get('year')}",
        f"enrolled {state['enrolled_in'] or '—'}",
        f"due {yuan(state['due_fen'])}",
        f"paid {yuan(state['net_paid_fen'])}",
        f"covered {covered}",
        f"waiting until {state['waiting_until'] or '—'}",
        f"account {yuan(state['account_balance_fen'])}",
    ]
    if state.get("outstanding_fen"):
        parts.insert(4, f"outstanding {yuan(state['outstanding_fen'])}")
    if state.get("overpayment_fen"):
        parts.insert(4, f"overpaid {yuan(state['overpayment_fen'])}")
    return " · ".join(parts)


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _verification(v: dict[str, Any] | None) -> str:
    if v is None:
        return "<p>Not verified in this report (run <code>ledger verify</code>).</p>"
    if v["clean"]:
        head = (f'<p class="ok">Verified: {v["events"]} stored events re-digested, the hash chain is intact'
                f'{" and matches its anchor" if not v["notes"] else ""}.</p>')
    else:
        head = f'<p class="bad">NOT CLEAN: {len(v["findings"])} finding(s).</p>'
    rows = "".join(
        f"<tr><td>{_e(f['code'])}</td><td class='num'>{_e(f['version'])}</td><td>{_e(f['kind'])}</td>"
        f"<td>{_e(f['message'])}</td></tr>" for f in v["findings"])
    table = (f"<table><thead><tr><th>finding</th><th class='num'>version</th><th>kind</th><th>detail</th></tr></thead>"
             f"<tbody>{rows}</tbody></table>") if rows else ""
    notes = "".join(f"<li>{_e(n)}</li>" for n in v["notes"])
    return head + table + (f"<ul class='small'>{notes}</ul>" if notes else "") + (
        f"<p class='small'>Checked at {_e(v['checked_at'])}, ledger position {_e(v['ledger_position'])}.</p>")


def _as_of(a: dict[str, Any] | None) -> str:
    if a is None:
        return ""
    rows = []
    for name, label in FIGURE_LABELS.items():
        then, now = a["then"].get(name), a["now"].get(name)
        mark = " class='bad'" if then != now else ""
        rows.append(f"<tr><td>{_e(label)}</td><td{mark}>{_e(figure_text(name, then))}</td>"
                    f"<td{mark}>{_e(figure_text(name, now))}</td></tr>")
    changes = []
    for c in a["changes"]:
        causes = "<br>".join(f"v{_e(x['version'])} ({_e(x['recorded_at'])}): {_e(x['description'])}" for x in c["causes"])
        traced = "" if c["traced"] else " <span class='small'>(not traced by the projection: events recorded since)</span>"
        changes.append(f"<tr><td>{_e(FIGURE_LABELS.get(c['figure'], c['figure']))}</td>"
                       f"<td>{_e(figure_text(c['figure'], c['then']))}</td><td>{_e(figure_text(c['figure'], c['now']))}</td>"
                       f"<td>{causes}{traced}</td></tr>")
    cov = a["covered_on"]
    return (
        f"<h2>As known at {_e(a['as_of'])} — coverage year {_e(a['year'])}</h2>"
        f"<p>The ledger then held versions 1 to {_e(a['known_version'])} of this person; "
        f"{_e(a['events_recorded_since'])} event(s) were recorded since (now version {_e(a['current_version'])}).</p>"
        "<table><thead><tr><th>figure</th><th>known then</th><th>known now</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        + ("<table><thead><tr><th>changed figure</th><th>then</th><th>now</th><th>caused by</th></tr></thead>"
           f"<tbody>{''.join(changes)}</tbody></table>" if changes else "<p>No figure changed since.</p>")
        + f"<p><b>Covered on {_e(cov['day'])}?</b> Known then: {'YES' if cov['then']['covered'] else 'NO'} — "
          f"{_e(cov['then']['reason'])}.<br>Known now: {'YES' if cov['now']['covered'] else 'NO'} — "
          f"{_e(cov['now']['reason'])}.</p>"
    )


def _history(events: list[dict[str, Any]]) -> str:
    rows = []
    for e in events:
        s = e["state_after"]
        source = _e(e["source"]) + (f"<br>{_e(e['document'])}" if e["document"] else "")
        recorded = str(e["recorded_at"])[:19].replace("T", " ")  # to the second; the JSON has the microseconds
        rows.append(
            f"<tr><td class='num'>{_e(e['version'])}</td><td class='small'>{_e(recorded)}</td>"
            f"<td>{_e(e['effective_date'])}</td><td>{_e(e['description'])}</td>"
            f"<td class='small'>{source}</td><td class='state'>{_e(state_line(s))}</td></tr>")
    return ("<table><thead><tr><th class='num'>v</th><th>recorded (UTC)</th><th>effective</th><th>event</th>"
            "<th>source</th><th>state after</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def render_html(report: dict[str, Any]) -> str:
    """The report as a self-contained printable HTML page (A4)."""
    r = report
    covered = ""
    if r.get("covered_on"):
        c = r["covered_on"]
        covered = (f"<p><b>Covered on {_e(c['day'])}?</b> {'YES' if c['now']['covered'] else 'NO'} — "
                   f"{_e(c['now']['reason'])}.</p>")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Audit report {_e(r['masked_id'])}</title><style>{CSS}</style></head><body>"
        "<h1>Insured person: history and verification (参保人权益记录审计)</h1>"
        "<table class='meta'><tbody>"
        f"<tr><td>ID ({_e(r['id_type'])})</td><td><b>{_e(r['masked_id'])}</b></td></tr>"
        f"<tr><td>person id</td><td class='mono'>{_e(r['person_id'])}</td></tr>"
        f"<tr><td>events</td><td>{_e(r['version'])}</td></tr>"
        f"<tr><td>coverage year shown</td><td>{_e(r['year'])}</td></tr>"
        f"<tr><td>generated at</td><td>{_e(r['generated_at'])}</td></tr>"
        f"<tr><td>ledger position</td><td>notification {_e(r['ledger_position'])}</td></tr>"
        "</tbody></table>"
        "<h2>Verification of the stored events</h2>" + _verification(r.get("verification"))
        + _as_of(r.get("as_of")) + covered
        + "<h2>History</h2>" + _history(r["events"])
        + f"<footer>Computed from the ledger's stored events (never snapshots) at notification {_e(r['ledger_position'])},"
          f" generated {_e(r['generated_at'])}. Figures are those of the entitlement projection after each event; "
          "amounts in yuan. The ID number is masked (个人信息保护法).</footer>"
        "</body></html>\n"
    )
