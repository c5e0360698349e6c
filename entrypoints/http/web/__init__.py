"""The web pages (网格员页面, 看板, 批量导入, 双人复核): each one self-contained HTML page, Chinese by default.

``page.html``, ``page.css`` and ``page.js`` beside this module are package data; :func:`page`
inlines the style and the script into the HTML, so the page is one response with no
other file, font or script to fetch (the machines it runs on have no internet). The
Content-Security-Policy of :func:`page` admits exactly that inline style and script (by
their SHA-256) and requests to this server only.

Every page's script is ``common.js`` (what all four share: the texts, the tab's token, the API call,
``el()``, yuan, the hash, file downloads, the language switch) followed by its own file, inlined as one
script. A page's language is chosen by :func:`entrypoints.http.routes_web.page_lang` (``?lang=``, else
Accept-Language, else Chinese): its HTML's ``{{t:key}}`` are filled from the catalogue's ``[web_common]``
and its own section (:data:`SECTIONS`), and the same texts are embedded as JSON
(``<script type="application/json" id="ledger-texts">``, never executed) for the script's ``t(key, values)``.
An English page asks the API in English (``Accept-Language: en``), so the API's own texts follow.

* :mod:`entrypoints.http.web.labels` -- Chinese labels and yuan text;
* :mod:`entrypoints.http.web.explain` -- one person's entitlement in Chinese sentences;
* :mod:`entrypoints.http.web.exports` -- the gap list as CSV (with BOM) and XLSX;
* ``import.html`` / ``import.js`` -- the clerk's import page (:func:`import_page`, ``/web/import``);
* ``changes.html`` / ``changes.js`` -- the maker-checker page (:func:`changes_page`, ``/web/changes``);
* ``dashboard.html`` / ``dashboard.js`` -- the county dashboard (:func:`dashboard_page`, ``/web/dashboard``).

The routes are in :mod:`entrypoints.http.routes_web` (the page, ``/me``, entitlement by person
id) and :mod:`entrypoints.http.routes_export` (the downloads).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
from dataclasses import dataclass
from importlib import resources

from entrypoints import catalogue
from entrypoints.http.web import labels
from ledger.domain.approvals import CHANGE_KINDS, STATUS_LABELS


@dataclass(frozen=True)
class Page:
    html: str
    content_security_policy: str
    lang: str = catalogue.DEFAULT_LANG


def _source(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _labels_json(lang: str = catalogue.DEFAULT_LANG) -> str:
    """The code labels the script shows, in ``lang``, from :mod:`entrypoints.http.web.labels` (the API's own
    words: in Chinese the domain's, in English ``[web_labels]``)."""
    data = {"reasons": {code: labels.reason(code, lang) for code in labels.REASON_LABELS},
            "subsidy_categories": {code: labels.subsidy_category(code, lang) for code in labels.SUBSIDY_CATEGORIES},
            "arrears_kinds": {code: labels.arrears_kind(code, lang) for code in labels.ARREARS_KINDS},
            "arrears_status": {"outstanding": labels.listed_because({"fee_only": False}, lang),
                               "fee_only": labels.listed_because({"fee_only": True}, lang)}}
    return _json_block(data)


#: The catalogue sections of each page (entrypoints/locale/{zh,en}.toml); ``web_common`` comes with every page.
SECTIONS = {"page.html": "web_grid", "dashboard.html": "web_dashboard", "import.html": "web_import",
            "changes.html": "web_changes"}
_HTML_TEXT = re.compile(r"\{\{t:([A-Za-z0-9_]+)\}\}")


def texts(section: str, lang: str) -> dict[str, str]:
    """The texts a page shows, in ``lang``: ``web_common`` and the page's own section (its keys win)."""
    keys = [*catalogue.table("web_common"), *catalogue.table(section)]
    return {key: catalogue.raw(section if catalogue.has(section, key) else "web_common", key, lang) for key in keys}


def _json_block(data: object) -> str:
    """JSON to sit inside a ``<script type="application/json">``: no ``<`` (so no ``</script>``) in it."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _lang_switch(lang: str) -> str:
    """The link to the same page in the other language (the script adds the hash when it is followed)."""
    other = "zh" if lang == "en" else "en"
    name = html.escape(catalogue.text("web_common", "lang_name", other))
    return (f'<a class="link lang-switch" id="lang-switch" href="?lang={other}" hreflang="{other}" '
            f'lang="{"zh-CN" if other == "zh" else "en"}">{name}</a>')


def _build(html_name: str, script_name: str, lang: str = catalogue.DEFAULT_LANG, labels_json: str = "",
           extra_style: str | None = None) -> Page:
    """A page in ``lang``: its fixed texts filled from the catalogue (``{{t:key}}``), the grid page's style (plus
    ``extra_style``), the shared script and its own inlined, its texts and labels as JSON blocks, and the CSP
    that admits just those (inline style and script by hash, requests to this server only)."""
    lang = lang if lang in catalogue.LANGS else catalogue.DEFAULT_LANG
    page_texts = texts(SECTIONS[html_name], lang)

    def fill(m: re.Match[str]) -> str:
        return html.escape(page_texts[m.group(1)], quote=True)

    style = _source("page.css") + (_source(extra_style) if extra_style else "")
    script = _source("common.js") + "\n" + _source(script_name)
    # Every page opens with the same <head> (title, style slot) and <body>: one file, head.html.
    body = _HTML_TEXT.sub(fill, _source(html_name).replace("{{head}}", _source("head.html").rstrip("\n"), 1))
    body = (body.replace("{{lang}}", "en" if lang == "en" else "zh-CN").replace("{{lang_switch}}", _lang_switch(lang))
            .replace("{{texts}}", _json_block({"lang": lang, "texts": page_texts}))
            .replace("/*{{style}}*/", style).replace("/*{{script}}*/", script).replace("{{labels}}", labels_json))
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
    return Page(html=body, content_security_policy=csp, lang=lang)


@functools.cache
def page(lang: str = catalogue.DEFAULT_LANG) -> Page:
    """The page with its style and script inlined, and the CSP that admits just those."""
    return _build("page.html", "page.js", lang, _labels_json(lang))


@functools.cache
def import_page(lang: str = catalogue.DEFAULT_LANG) -> Page:
    """The clerk's import page (批量参保登记): upload a sheet, every problem of every row, the error workbook
    and the templates to download; the grid page's style, its own script, the same CSP."""
    return _build("import.html", "import.js", lang)


def _changes_labels_json(lang: str) -> str:
    """The change kinds and statuses (the domain's words; the catalogue's in English) and the API's value labels
    (死亡, 医疗支出...)."""
    values = {code: t[lang] for code, t in catalogue.table("api_values").items() if lang in t}
    if lang == "en":
        kinds = {k: catalogue.text("web_changes", f"kind_{k}", lang) for k in CHANGE_KINDS}
        statuses = {k: catalogue.text("web_changes", f"status_{k}", lang) for k in STATUS_LABELS}
    else:
        kinds, statuses = dict(CHANGE_KINDS), dict(STATUS_LABELS)
    return _json_block({"kinds": kinds, "statuses": statuses, "values": values})


@functools.cache
def changes_page(lang: str = catalogue.DEFAULT_LANG) -> Page:
    """The maker-checker page (双人复核 · 待审核变更): the changes of the viewer's regions, filtered by status, and
    approve / reject for an approver; the grid page's style, its own script, the same CSP."""
    return _build("changes.html", "changes.js", lang, _changes_labels_json(lang))


@functools.cache
def dashboard_page(lang: str = catalogue.DEFAULT_LANG) -> Page:
    """The county dashboard (区县参保工作看板): the grid page's style plus its own, its own script, the same CSP
    (inline style and script by hash, requests to this server only)."""
    return _build("dashboard.html", "dashboard.js", lang, extra_style="dashboard.css")


__all__ = ["SECTIONS", "Page", "changes_page", "dashboard_page", "import_page", "page", "texts"]
