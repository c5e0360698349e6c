"""The printable audit report (审计报告): one person's history as an HTML page an auditor can file.

:func:`render_html` takes the plain report of
:func:`entrypoints.audit.replay.history_report` (best with ``printable=True``) and returns
a self-contained HTML page (no scripts, no external resources) with print CSS for A4, in
Chinese by default (``lang="en"`` for English; texts in :mod:`entrypoints.messages`):
the person's name (masked unless ``reveal``) and masked ID, the verification result, the
as-of comparison (when an instant was asked), the history table (recording time in
Beijing time, the source record, each event's hash and the state after it), and a
sign-off block with the generation time, the as-of instant, the number of events and
the chain head. The ID number is always masked here (个人信息保护法).
"""
from __future__ import annotations

import re

from datetime import datetime
from html import escape
from typing import Any

from entrypoints.messages import AUDIT, AUDIT_FIGURES, AUDIT_WORDS, DEFAULT_LANG, audit_text
from entrypoints.http.coverage_reasons import reason_text
from events.ledger_events import mask_name
from ledger.domain.coverage import region_label
from ledger.domain.person import BUSINESS_TZ

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
.hash { font-size: 7.5pt; white-space: nowrap; }
.signoff { margin-top: 8mm; page-break-inside: avoid; break-inside: avoid; }
table.sign td { border: none; padding: 6mm 2mm 1mm 0; width: 33%; }
.line { display: inline-block; width: 38mm; border-bottom: 0.5pt solid #111; }
h1, h2 { break-after: avoid; page-break-after: avoid; }
.history tbody tr:nth-child(even) td { background: #fafafa; }
.scroll { overflow-x: auto; }
@media screen { body { padding: 12px; } }
@media screen and (max-width: 600px) { body { padding: 8px; font-size: 10.5pt; overflow-wrap: anywhere; }
  .hash { white-space: normal; } .meta td, .small, footer { overflow-wrap: anywhere; word-break: break-word; }
  table.sign td { display: block; width: auto; padding-top: 4mm; } }
@media print { a { color: inherit; text-decoration: none; } .noprint { display: none; }
               body { max-width: none; } .scroll { overflow: visible; } }
"""


def _css_string(text: str) -> str:
    """A CSS string literal: quotes and backslashes escaped, and ``<`` as ``\\3C`` so no ``</style>`` can end the sheet."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ").replace("\n", " ") + '"'


def page_css(header: str, page_number: str) -> str:
    """The printed page's running header (the report's title and the masked ID) and page numbers
    (第 1 / 3 页, from the catalogue's ``{page} / {pages}`` text): CSS margin boxes, which Chromium's
    print (the ``--pdf`` output) and its print dialog honour."""
    pieces = []
    for part in re.split(r"(\{page\}|\{pages\})", page_number):
        if part == "{page}":
            pieces.append("counter(page)")
        elif part == "{pages}":
            pieces.append("counter(pages)")
        elif part:
            pieces.append(_css_string(part))
    return ("@page { @top-left { content: " + _css_string(header) + "; font-size: 8pt; color: #444; } "
            "@bottom-right { content: " + " ".join(pieces) + "; font-size: 8pt; color: #444; } }")


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


def cst(value: Any) -> str:
    """An ISO instant (any offset) as Beijing time to the second, ``2025-03-01 09:30:00``; other text as is."""
    if value is None or value == "":
        return "—"
    try:
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if instant.tzinfo is None:
        return instant.isoformat(sep=" ")[:19]
    return instant.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")


def short_hash(digest: Any) -> str:
    return str(digest)[:16] if digest else "—"


def figure_words(name: str, value: Any, lang: str) -> str:
    if isinstance(value, bool):
        return audit_text("yes" if value else "no", lang)
    if name == "coverage_periods" and not value:
        return "—"
    return figure_text(name, value)


def state_words(state: dict[str, Any], lang: str) -> str:
    """The state after a step, in one line, in the report's language."""
    t = lambda key, v: audit_text(key, lang, v=v)  # noqa: E731
    covered = f"{state['covered_from']} – {state['covered_to']}" if state.get("covered_from") else "—"
    enrolled = state.get("enrolled_in") or "—"
    if lang == "zh" and " " in enrolled:  # "RESIDENT 610902" -> "城乡居民医保 610902 汉滨区"
        scheme, region = enrolled.split(" ", 1)
        enrolled = f"{AUDIT_WORDS.get(scheme, {}).get('zh', scheme)} {region_label(region)}"
    parts = [t("state_year", state.get("year")), t("state_enrolled", enrolled),
             t("state_due", yuan(state.get("due_fen"))), t("state_paid", yuan(state.get("net_paid_fen"))),
             t("state_covered", covered), t("state_waiting", state.get("waiting_until") or "—"),
             t("state_account", yuan(state.get("account_balance_fen")))]
    if state.get("outstanding_fen"):
        parts.insert(4, t("state_outstanding", yuan(state["outstanding_fen"])))
    if state.get("overpayment_fen"):
        parts.insert(4, t("state_overpaid", yuan(state["overpayment_fen"])))
    return " · ".join(parts)


def record_words(record: dict[str, Any] | None, lang: str) -> list[str]:
    """What the source record is, as a person reads it (never the Kafka message key)."""
    if not record:
        return []
    lines = []
    if record.get("kind"):
        line = audit_text(f"record_{record['kind']}", lang, id=record.get("id") or "—")
        if record.get("issuer"):
            line += audit_text("issuer", lang, issuer=record["issuer"])
        lines.append(line)
    if record.get("user"):
        key = "record_clerk" if record.get("request_id") else "record_clerk_no_request"
        lines.append(audit_text(key, lang, user=record["user"], request_id=record.get("request_id")))
    elif not lines:
        if record.get("feed"):
            lines.append(audit_text("record_feed", lang, feed=record["feed"]))
        elif record.get("source") == "batch":
            lines.append(audit_text("record_batch", lang))
        elif record.get("source"):
            lines.append(audit_text("record_system", lang, source=record["source"]))
    return lines


def _verification(v: dict[str, Any] | None, lang: str) -> str:
    if v is None:
        return f"<p>{_e(audit_text('not_verified', lang))}</p>"
    if v["clean"]:
        anchor = audit_text("verified_anchor", lang) if not v["notes"] else ""
        head = f'<p class="ok">{_e(audit_text("verified", lang, n=v["events"], anchor=anchor))}</p>'
    else:
        head = f'<p class="bad">{_e(audit_text("not_clean", lang, n=len(v["findings"])))}</p>'
    rows = "".join(
        f"<tr><td>{_e(f['code'])}</td><td class='num'>{_e(f['version'])}</td><td>{_e(f['kind'])}</td>"
        f"<td>{_e(f['message'])}</td></tr>" for f in v["findings"])
    a = lambda key: _e(audit_text(key, lang))  # noqa: E731
    table = (f"<table><thead><tr><th>{a('finding')}</th><th class='num'>{a('version')}</th><th>{a('kind')}</th>"
             f"<th>{a('detail')}</th></tr></thead><tbody>{rows}</tbody></table>") if rows else ""
    notes = "".join(f"<li>{_e(n)}</li>" for n in v["notes"])
    return head + table + (f"<ul class='small'>{notes}</ul>" if notes else "") + (
        f"<p class='small'>{_e(audit_text('checked_at', lang, at=cst(v['checked_at']), n=v['ledger_position']))}</p>")


def _yes(covered: bool, lang: str) -> str:
    return audit_text("yes" if covered else "no", lang)


def _as_of(a: dict[str, Any] | None, lang: str) -> str:
    if a is None:
        return ""
    t = lambda key, **kw: _e(audit_text(key, lang, **kw))  # noqa: E731
    label = lambda name: _e(AUDIT_FIGURES.get(name, {}).get(lang, name))  # noqa: E731
    rows = []
    for name in AUDIT_FIGURES:
        then, now = a["then"].get(name), a["now"].get(name)
        mark = " class='bad'" if then != now else ""
        rows.append(f"<tr><td>{label(name)}</td><td{mark}>{_e(figure_words(name, then, lang))}</td>"
                    f"<td{mark}>{_e(figure_words(name, now, lang))}</td></tr>")
    changes = []
    for c in a["changes"]:
        causes = "<br>".join(f"v{_e(x['version'])} ({_e(cst(x['recorded_at']))}): {_e(x['description'])}"
                             for x in c["causes"])
        traced = "" if c["traced"] else f" <span class='small'>{t('untraced')}</span>"
        changes.append(f"<tr><td>{label(c['figure'])}</td><td>{_e(figure_words(c['figure'], c['then'], lang))}</td>"
                       f"<td>{_e(figure_words(c['figure'], c['now'], lang))}</td><td>{causes}{traced}</td></tr>")
    cov = a["covered_on"]
    return (
        f"<h2>{t('as_of', at=cst(a['as_of']) + ' ' + audit_text('tz', lang), year=a['year'])}</h2>"
        f"<p>{t('as_of_held', known=a['known_version'], since=a['events_recorded_since'], now=a['current_version'])}</p>"
        f"<table><thead><tr><th>{t('figure')}</th><th>{t('then')}</th><th>{t('now')}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        + (f"<table><thead><tr><th>{t('changed')}</th><th>{t('then')}</th><th>{t('now')}</th><th>{t('caused_by')}</th>"
           f"</tr></thead><tbody>{''.join(changes)}</tbody></table>" if changes else f"<p>{t('no_change')}</p>")
        + f"<p><b>{t('covered_on', day=cov['day'])}</b> {t('known_then')}: {_e(_yes(cov['then']['covered'], lang))} — "
          f"{_e(reason_text(cov['then'], lang))}.<br>{t('known_now')}: {_e(_yes(cov['now']['covered'], lang))} — "
          f"{_e(reason_text(cov['now'], lang))}.</p>"
    )


def _history(events: list[dict[str, Any]], lang: str) -> str:
    t = lambda key: _e(audit_text(key, lang))  # noqa: E731
    rows = []
    for e in events:
        record = record_words(e.get("record"), lang) if "record" in e else [e["source"]] + (
            [e["document"]] if e.get("document") else [])
        digest = (f"<span class='mono'>{_e(short_hash(e.get('digest')))}</span><br><span class='small mono'>"
                  f"{t('prev')} {_e(short_hash(e.get('prev_hash')))}</span>")
        description = (e.get("description_zh") if lang == "zh" else None) or e["description"]
        rows.append(
            f"<tr><td class='num'>{_e(e['version'])}</td><td class='small'>{_e(cst(e['recorded_at']))}</td>"
            f"<td>{_e(e['effective_date'])}</td><td>{_e(description)}</td>"
            f"<td class='small record'>{'<br>'.join(_e(x) for x in record)}</td><td class='hash'>{digest}</td>"
            f"<td class='state'>{_e(state_words(e['state_after'], lang))}</td></tr>")
    return (f"<div class='scroll'><table class='history'><thead><tr><th class='num'>{t('col_v')}</th><th>{t('col_recorded')}</th>"
            f"<th>{t('col_effective')}</th><th>{t('col_event')}</th><th>{t('col_record')}</th><th>{t('col_hash')}</th>"
            f"<th>{t('col_state')}</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _signoff(r: dict[str, Any], lang: str) -> str:
    t = lambda key, **kw: _e(audit_text(key, lang, **kw))  # noqa: E731
    tz = audit_text("tz", lang)
    as_of = (f"{cst(r['as_of_instant'])} {tz}" if r.get("as_of_instant")
             else audit_text("as_of_now", lang, n=r["ledger_position"]))
    facts = t("signoff_facts", generated=f"{cst(r['generated_at'])} {tz}", as_of=as_of, n=r["version"],
              head=r.get("chain_head") or "—")
    line = "<span class='line'></span>"
    return (f"<section class='signoff'><h2>{t('signoff')}</h2><p class='small'>{facts}</p>"
            f"<table class='sign'><tbody><tr><td>{t('auditor')}：{line}</td><td>{t('date')}：{line}</td>"
            f"<td>{t('signature')}：{line}</td></tr></tbody></table></section>")


def render_html(report: dict[str, Any], lang: str = DEFAULT_LANG, *, reveal: bool = False) -> str:
    """The report as a self-contained printable HTML page (A4), Chinese unless ``lang="en"``.

    ``reveal``: show the person's name in full (the caller has checked the viewer may);
    otherwise it is masked (张*). The ID number is always masked.
    """
    r = report
    t = lambda key, **kw: _e(audit_text(key, lang, **kw))  # noqa: E731
    tz = audit_text("tz", lang)
    covered = ""
    if r.get("covered_on"):
        c = r["covered_on"]
        covered = (f"<p><b>{t('covered_on', day=c['day'])}</b> {_e(_yes(c['now']['covered'], lang))} — "
                   f"{_e(reason_text(c['now'], lang))}.</p>")
    name_row = ""
    if r.get("name"):
        shown = r["name"] if reveal else mask_name(r["name"])
        note = "" if reveal else f" <span class='small'>{t('name_masked')}</span>"
        name_row = f"<tr><td>{t('name')}</td><td><b>{_e(shown)}</b>{note}</td></tr>"
    id_type = AUDIT_WORDS.get(str(r["id_type"]), {}).get(lang, r["id_type"])
    head_row = (f"<tr><td>{t('chain_head')}</td><td class='mono'>{_e(r['chain_head'])}</td></tr>"
                if r.get("chain_head") else "")
    return (
        f"<!DOCTYPE html>\n<html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{t('doc_title', masked_id=r['masked_id'])}</title><style>{CSS}"
        + page_css(audit_text('title', lang) + ' · ' + str(r['masked_id']), AUDIT['page_number'][lang]) + "</style></head><body>"
        f"<h1>{t('title')}</h1>"
        "<table class='meta'><tbody>" + name_row
        + f"<tr><td>{t('id', id_type=id_type)}</td><td><b>{_e(r['masked_id'])}</b></td></tr>"
        f"<tr><td>{t('person_id')}</td><td class='mono'>{_e(r['person_id'])}</td></tr>"
        f"<tr><td>{t('events')}</td><td>{_e(r['version'])}</td></tr>"
        f"<tr><td>{t('year')}</td><td>{_e(r['year'])}</td></tr>"
        f"<tr><td>{t('generated_at')}</td><td>{_e(cst(r['generated_at']))} {_e(tz)}</td></tr>"
        f"<tr><td>{t('position')}</td><td>{t('position_value', n=r['ledger_position'])}</td></tr>"
        + head_row + "</tbody></table>"
        f"<h2>{t('verification')}</h2>" + _verification(r.get("verification"), lang)
        + _as_of(r.get("as_of"), lang) + covered
        + f"<h2>{t('history')}</h2>" + _history(r["events"], lang)
        + _signoff(r, lang)
        + f"<footer>{t('footer', n=r['ledger_position'], generated=cst(r['generated_at']) + ' ' + tz)}</footer>"
        "</body></html>\n"
    )
