"""Labels and money text for the grid worker's page and its exports (网格员页面), Chinese by default.

The codes stay as they are in the API; these are only how a page or a spreadsheet says them, in the
reader's language (``lang``: ``zh``, the default, or ``en``), from the catalogue's ``[web_labels]``.
Data is never translated: names, and the place names of the places table and of the districts.
The Chinese tables below are read from it; the domain's own (``REASON_LABELS``, ``SUBSIDY_CATEGORIES``,
``WAITING_EXEMPTIONS``, the transfer and late-fee states) hold the same texts (a unit test keeps them equal).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ledger.domain.places import ANKANG_REGIONS, NO_PLACE_NAMES, PlaceNames
from ledger.policy.model import SUBSIDY_CATEGORIES, WAITING_EXEMPTIONS  # noqa: F401  (the page builder reads them here)
from ledger.domain.gaps import REASON_LABELS  # noqa: F401  (the page builder reads it here)
from entrypoints import catalogue
from entrypoints.catalogue import DEFAULT_LANG

SECTION = "web_labels"


def word(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    """One text of ``[web_labels]`` in ``lang``."""
    return catalogue.text(SECTION, key, lang, **values)


def _coded(prefix: str, code: str | None, lang: str) -> str:
    """The label of ``code`` (``prefix_CODE`` in ``[web_labels]``); an unknown code as it is."""
    if not code:
        return ""
    key = f"{prefix}_{code}"
    return catalogue.raw(SECTION, key, lang) if catalogue.has(SECTION, key) else code


def _table(prefix: str, lang: str = DEFAULT_LANG) -> dict[str, str]:
    """``{code: label}`` of the ``prefix_CODE`` texts of ``[web_labels]``, in the catalogue's order."""
    start = prefix + "_"
    return {k[len(start):]: v[lang] for k, v in catalogue.table(SECTION).items() if k.startswith(start)}


#: The Chinese labels under their old names (for the page builder and older callers).
ID_TYPES = _table("id_type")
SCHEMES = _table("scheme")
END_REASONS = _table("end_reason")
#: Who owes an arrears row (the API's ``kind``).
ARREARS_KINDS = _table("arrears_kind")


def id_type(code: str | None, lang: str = DEFAULT_LANG) -> str:
    return _coded("id_type", code, lang)


def scheme(code: str | None, lang: str = DEFAULT_LANG) -> str:
    return _coded("scheme", code, lang)


def reason(code: str | None, lang: str = DEFAULT_LANG) -> str:
    return _coded("reason", code, lang)


def subsidy_category(code: str | None, lang: str = DEFAULT_LANG) -> str:
    return _coded("subsidy", code, lang)


def waiting_exemption(code: str | None, lang: str = DEFAULT_LANG) -> str:
    return _coded("exemption", code, lang)


def end_reason(code: str | None, lang: str = DEFAULT_LANG) -> str:
    return _coded("end_reason", code, lang)


def region(code: str | None) -> str:
    """``610902 汉滨区`` (the code alone when the ledger has no name for it)."""
    if not code:
        return ""
    name = ANKANG_REGIONS.get(code[:6])
    return f"{code} {name}" if name and len(code) == 6 else code


def place(code: str | None, names: PlaceNames = NO_PLACE_NAMES, day: date | None = None,
          lang: str = DEFAULT_LANG) -> str:
    """A township or grid as a person reads it: ``汉滨区 关庙镇 · 东坝村`` from the places table's names
    valid on ``day`` (default: today).

    A code with no name valid that day is shown as before: the district's name, the kind of township
    and of village the code's blocks denote (街道/镇/乡; 001-199 社区, 200-399 村) and the code
    (``汉滨区 镇 610902105 · 村 204``; in English ``汉滨区 town 610902105 · village 204``: the names are
    data, only the kind words follow the language), so a missing or outdated table never hides a place.
    """
    if not code:
        return ""
    if len(code) not in (9, 12) or not code.isdigit():
        return code
    day = day or date.today()
    district = ANKANG_REGIONS.get(code[:6], code[:6])
    township = names.name_on(code[:9], day)
    if township is None:
        block = int(code[6:9])
        kind = next((k for lo, hi, k in ((1, 99, "kind_subdistrict"), (100, 199, "kind_town"), (200, 399, "kind_township"),
                                         (400, 599, "kind_township_level")) if lo <= block <= hi), "kind_other")
        township = f"{word(kind, lang)} {code[:9]}"
    text = f"{district} {township}"
    if len(code) == 12:
        village = names.name_on(code, day)
        if village is None:
            village = f"{word('kind_community' if int(code[9:]) < 200 else 'kind_village', lang)} {code[9:]}"
        text += f" · {village}"
    return text


def scope_word(kind: str, lang: str = DEFAULT_LANG) -> str:
    """``网格`` / ``乡镇`` / ``区县`` (``grid``, ``township``, ``region``); empty for anything else."""
    key = f"scope_{kind}"
    return word(key, lang) if catalogue.has(SECTION, key) else ""


def places_note(names: PlaceNames, codes: Iterable[str], day: date | None = None, lang: str = DEFAULT_LANG) -> str:
    """Where the names of ``codes`` come from, when any is sample data (示例): a line the page and exports
    show, so nobody takes a demo's names for official ones; empty otherwise."""
    day = day or date.today()
    for code in codes:
        for c in ((code[:9], code) if len(code) == 12 else (code,)):
            entry = names.entry_on(c, day)
            if entry is not None and entry.source.startswith("示例"):
                return word("places_note", lang)
    return ""


AWAITING = _table("awaiting")


def transfer_state(state: dict[str, Any], lang: str = DEFAULT_LANG) -> str:
    """An open transfer's state as the grid worker reads it: ``待转出`` / ``待转入``, or, past its time
    limit, ``待转入，已逾期 N 个工作日`` (N from the domain's transfer_status, on the day asked about)."""
    text = _coded("awaiting", state.get("awaiting"), lang)
    if state.get("overdue"):
        text += word("overdue", lang, days=state.get("overdue_working_days"))
    return text


def transfer_status(status: str | None, lang: str = DEFAULT_LANG) -> str:
    """A transfer's status (``REQUESTED``, ``OUT_COMPLETED``, ``DONE``...): 已申请待转出, 已转出待转入, ..."""
    return _coded("transfer_status", status, lang)


def transfer_explanation(row: dict[str, Any], lang: str = DEFAULT_LANG) -> str:
    """Where a transfer of a region's list stands (its ``explanation``). Chinese: the domain's own sentence
    (:func:`ledger.domain.transfers.transfer_status`, with the time limit in working days); another language:
    said from the row's figures (awaited half, due day, working days overdue)."""
    if lang == DEFAULT_LANG and row.get("explanation"):
        return row["explanation"]
    tid = row.get("transfer_id")
    if row.get("awaiting"):
        half = _coded("transfer_half", row["awaiting"], lang)
        if row.get("overdue"):
            return word("transfer_late", lang, transfer_id=tid, half=half, due=row.get("due_on"),
                        days=row.get("overdue_working_days"))
        return word("transfer_open", lang, transfer_id=tid, half=half, due=row.get("due_on"))
    text = word("transfer_closed", lang, transfer_id=tid, status=transfer_status(row.get("status"), lang))
    return text + (word("transfer_external", lang) if row.get("external") else "")


def arrears_kind(code: str | None, lang: str = DEFAULT_LANG) -> str:
    """Who owes an arrears row (its ``kind``): 城乡居民 / 灵活就业人员 / 单位职工."""
    return _coded("arrears_kind", code, lang)


def role(code: str | None, lang: str = DEFAULT_LANG) -> str:
    """A token's role (``GRID_WORKER``...) in words: 网格员, 医保经办, ..."""
    return _coded("role", code, lang)


def year_basis(basis: str, lang: str = DEFAULT_LANG) -> str:
    """How the year shown was chosen (``asked``, ``as_of``, ``today``, ``latest_with_data``)."""
    return _coded("year_basis", basis, lang)


def reconciliation_state(state: str, lang: str = DEFAULT_LANG) -> str:
    """A day's tie-out state (``projections.dashboard.RECONCILIATION_STATES``): 已平账, 有差异, ..."""
    return _coded("reconciliation", state, lang)


def fee_status(status: str | None, lang: str = DEFAULT_LANG) -> str:
    """A late fee's state (``OWED``, ``PART_PAID``, ``PAID``, ``WAIVED``)."""
    return _coded("fee_status", status, lang)


def listed_because(row: dict[str, Any], lang: str = DEFAULT_LANG) -> str:
    """Why an arrears row is listed: contribution owed (欠费) or only the late fee unpaid (滞纳金未缴)."""
    return word("listed_FEE_ONLY" if row.get("fee_only") else "listed_OUTSTANDING", lang)


def yes_no(value: Any, lang: str = DEFAULT_LANG) -> str:
    return word("yes" if value else "no", lang)


def yuan(fen: int | None) -> str:
    """Integer fen as yuan text with two decimals (``40000`` -> ``400.00``), without floats."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"


__all__ = ["ARREARS_KINDS", "AWAITING", "END_REASONS", "ID_TYPES", "SCHEMES", "arrears_kind", "end_reason", "fee_status",
           "id_type", "listed_because", "place", "places_note", "reason", "reconciliation_state", "region", "role",
           "scheme", "scope_word", "subsidy_category", "transfer_explanation", "transfer_state", "transfer_status", "waiting_exemption", "word", "year_basis",
           "yes_no", "yuan"]
