"""A late-fee line's arithmetic and status in the reader's language (``ledger fees``, the demo report).

The domain's fee row (:func:`ledger.domain.arrears.fee_row`) carries its figures (principal, days,
fen-days, the daily rate, accrued, paid, owed, waived) beside a Chinese ``arithmetic`` sentence and
``fee_status_label``; this module says them from the catalogue (section ``[fee_lines]``): in Chinese
the same sentence as the domain's, in English the same arithmetic in English.
"""
from __future__ import annotations

from typing import Any, Mapping

from entrypoints import catalogue
from ledger.domain.arrears import rate_text, yuan

SECTION = "fee_lines"


def _t(key: str, lang: str, **values: Any) -> str:
    return catalogue.text(SECTION, key, lang, **values)


def fee_arithmetic(row: Mapping[str, Any], lang: str = catalogue.DEFAULT_LANG) -> str:
    """``principal × days × rate = accrued`` (or the day-by-day sum when part was paid), then paid / owed / waived."""
    rate = rate_text(row["rate_ppm_per_day"])
    if row["fen_days"] == row["principal_fen"] * row["days"]:
        text = _t("simple", lang, principal=yuan(row["principal_fen"]), days=row["days"], rate=rate,
                  accrued=yuan(row["accrued_fen"]))
    else:
        text = _t("day_by_day", lang, fen_days=yuan(row["fen_days"]), rate=rate, accrued=yuan(row["accrued_fen"]),
                  principal=yuan(row["principal_fen"]))
    if row["waived"]:
        return text + _t("waived", lang)
    if row["owed_fen"] == 0:
        return text + _t("paid", lang, paid=yuan(row["fee_paid_fen"]))
    if row["fee_paid_fen"]:
        return text + _t("part_paid", lang, paid=yuan(row["fee_paid_fen"]), owed=yuan(row["owed_fen"]))
    return text


def fee_status(row: Mapping[str, Any], lang: str = catalogue.DEFAULT_LANG) -> str:
    key = f"status.{row['fee_status']}"
    return _t(key, lang) if catalogue.has(SECTION, key) else str(row.get("fee_status_label") or row["fee_status"])


__all__ = ["fee_arithmetic", "fee_status"]
