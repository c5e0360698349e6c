"""Chinese labels and money text for the grid worker's page and its exports (网格员页面).

The codes stay English in the API; these are only how a page or a spreadsheet says them.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ledger.domain.places import ANKANG_REGIONS, NO_PLACE_NAMES, PlaceNames
from ledger.policy.model import SUBSIDY_CATEGORIES, WAITING_EXEMPTIONS
from ledger.domain.gaps import REASON_LABELS

ID_TYPES = {
    "RESIDENT_ID": "居民身份证",
    "PASSPORT": "护照",
    "HK_MACAU_PERMIT": "港澳居民来往内地通行证",
    "TAIWAN_PERMIT": "台湾居民来往大陆通行证",
    "FOREIGN_PERMANENT_RESIDENT": "外国人永久居留身份证",
}

SCHEMES = {
    "RESIDENT": "城乡居民基本医疗保险",
    "EMPLOYEE": "职工基本医疗保险",
}

END_REASONS = {
    "DIED": "死亡",
    "MOVED_OUT": "迁出",
    "TRANSFERRED_OUT": "转出",
    "SWITCHED_SCHEME": "转换险种",
    "DUPLICATE_RESOLVED": "重复参保已清理",
}


#: Who owes an arrears row (the API's ``kind``).
ARREARS_KINDS = {
    "RESIDENT": "城乡居民",
    "FLEXIBLE": "灵活就业人员",
    "EMPLOYER": "单位职工",
}


def id_type(code: str | None) -> str:
    return ID_TYPES.get(code or "", code or "")


def scheme(code: str | None) -> str:
    return SCHEMES.get(code or "", code or "")


def reason(code: str | None) -> str:
    return REASON_LABELS.get(code or "", code or "")


def subsidy_category(code: str | None) -> str:
    return SUBSIDY_CATEGORIES.get(code or "", code or "")


def waiting_exemption(code: str | None) -> str:
    return WAITING_EXEMPTIONS.get(code or "", code or "")


def end_reason(code: str | None) -> str:
    return END_REASONS.get(code or "", code or "")


def region(code: str | None) -> str:
    """``610902 汉滨区`` (the code alone when the ledger has no name for it)."""
    if not code:
        return ""
    name = ANKANG_REGIONS.get(code[:6])
    return f"{code} {name}" if name and len(code) == 6 else code


def place(code: str | None, names: PlaceNames = NO_PLACE_NAMES, day: date | None = None) -> str:
    """A township or grid as a person reads it: ``汉滨区 关庙镇 · 东坝村`` from the places table's names
    valid on ``day`` (default: today).

    A code with no name valid that day is shown as before: the district's name, the kind of township
    and of village the code's blocks denote (街道/镇/乡; 001-199 社区, 200-399 村) and the code
    (``汉滨区 镇 610902105 · 村 204``), so a missing or outdated table never hides a place.
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
        kind = next((w for lo, hi, w in ((1, 99, "街道"), (100, 199, "镇"), (200, 399, "乡"), (400, 599, "乡级单位"))
                     if lo <= block <= hi), "乡镇")
        township = f"{kind} {code[:9]}"
    text = f"{district} {township}"
    if len(code) == 12:
        village = names.name_on(code, day)
        if village is None:
            village = f"{'社区' if int(code[9:]) < 200 else '村'} {code[9:]}"
        text += f" · {village}"
    return text


def places_note(names: PlaceNames, codes: Iterable[str], day: date | None = None) -> str:
    """Where the names of ``codes`` come from, when any is sample data (示例): a line the page and exports
    show, so nobody takes a demo's names for official ones; empty otherwise."""
    day = day or date.today()
    for code in codes:
        for c in ((code[:9], code) if len(code) == 12 else (code,)):
            entry = names.entry_on(c, day)
            if entry is not None and entry.source.startswith("示例"):
                return "地名为示例数据（演示用，非官方区划名称）；各区县请以本地地名表替换（LEDGER_PLACES_FILE）。"
    return ""


AWAITING = {"SENDING": "待转出", "RECEIVING": "待转入"}


def transfer_state(state: dict[str, Any]) -> str:
    """An open transfer's state as the grid worker reads it: ``待转出`` / ``待转入``, or, past its time
    limit, ``待转入，已逾期 N 个工作日`` (N from the domain's transfer_status, on the day asked about)."""
    text = AWAITING.get(state.get("awaiting") or "", state.get("awaiting") or "")
    if state.get("overdue"):
        text += f"，已逾期 {state.get('overdue_working_days')} 个工作日"
    return text


def yuan(fen: int | None) -> str:
    """Integer fen as yuan text with two decimals (``40000`` -> ``400.00``), without floats."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"


__all__ = ["ARREARS_KINDS", "AWAITING", "END_REASONS", "ID_TYPES", "SCHEMES", "end_reason", "id_type", "place", "places_note", "reason", "region", "scheme",
           "subsidy_category", "transfer_state", "waiting_exemption", "yuan"]
