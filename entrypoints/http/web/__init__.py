"""The grid worker's web page (网格员应保尽保页面): one self-contained HTML page, in Chinese.

``page.html``, ``page.css`` and ``page.js`` beside this module are package data; :func:`page`
inlines the style and the script into the HTML, so the page is one response with no
other file, font or script to fetch (the machines it runs on have no internet). The
Content-Security-Policy of :func:`page` admits exactly that inline style and script (by
their SHA-256) and requests to this server only.

* :mod:`entrypoints.http.web.labels` -- Chinese labels and yuan text;
* :mod:`entrypoints.http.web.explain` -- one person's entitlement in Chinese sentences;
* :mod:`entrypoints.http.web.exports` -- the gap list as CSV (with BOM) and XLSX;
* ``import.html`` / ``import.js`` -- the clerk's import page (:func:`import_page`, ``/web/import``);
* ``changes.html`` / ``changes.js`` -- the maker-checker page (:func:`changes_page`, ``/web/changes``).

The routes are in :mod:`entrypoints.http.routes_web` (the page, ``/me``, entitlement by person
id) and :mod:`entrypoints.http.routes_export` (the downloads).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from entrypoints import catalogue
from entrypoints.http.web import labels
from ledger.domain.approvals import CHANGE_KINDS, STATUS_LABELS
from ledger.domain.arrears import FEE_ONLY_LABEL, OUTSTANDING_LABEL


@dataclass(frozen=True)
class Page:
    html: str
    content_security_policy: str


def _source(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _labels_json() -> str:
    """The Chinese labels the script shows, from the one place each is defined."""
    data = {"reasons": dict(labels.REASON_LABELS), "subsidy_categories": dict(labels.SUBSIDY_CATEGORIES),
            "arrears_kinds": dict(labels.ARREARS_KINDS),
            "arrears_status": {"outstanding": OUTSTANDING_LABEL, "fee_only": FEE_ONLY_LABEL}}
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _build(html_name: str, script_name: str, labels_json: str = "", extra_style: str | None = None) -> Page:
    """A page with the grid page's style (plus ``extra_style``), its own script and labels inlined, and the
    CSP that admits just those (inline style and script by hash, requests to this server only)."""
    style, script = _source("page.css") + (_source(extra_style) if extra_style else ""), _source(script_name)
    html = (_source(html_name).replace("/*{{style}}*/", style).replace("/*{{script}}*/", script)
            .replace("{{labels}}", labels_json))
    csp = "; ".join((
        "default-src 'none'",
        f"script-src {_sha256(script)}",
        f"style-src {_sha256(style)}",
        "connect-src 'self'",
        "img-src 'self' data: blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))
    return Page(html=html, content_security_policy=csp)


@functools.cache
def page() -> Page:
    """The page with its style and script inlined, and the CSP that admits just those."""
    return _build("page.html", "page.js", _labels_json())


@functools.cache
def import_page() -> Page:
    """The clerk's import page (批量参保登记): upload a sheet, every problem of every row, the error workbook
    and the templates to download; the grid page's style, its own script, the same CSP."""
    return _build("import.html", "import.js")


def _changes_labels_json() -> str:
    """The change kinds and statuses (the domain's words) and the API's value labels (死亡, 医疗支出...)."""
    values = {code: texts["zh"] for code, texts in catalogue.table("api_values").items() if "zh" in texts}
    data = {"kinds": dict(CHANGE_KINDS), "statuses": dict(STATUS_LABELS), "values": values}
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


@functools.cache
def changes_page() -> Page:
    """The maker-checker page (双人复核 · 待审核变更): the changes of the viewer's regions, filtered by status, and
    approve / reject for an approver; the grid page's style, its own script, the same CSP."""
    return _build("changes.html", "changes.js", _changes_labels_json())


@functools.cache
def dashboard_page() -> Page:
    """The county dashboard (区县参保工作看板): the grid page's style plus its own, its own script, the same CSP
    (inline style and script by hash, requests to this server only)."""
    return _build("dashboard.html", "dashboard.js", extra_style="dashboard.css")


__all__ = ["Page", "changes_page", "dashboard_page", "import_page", "page"]
