"""What a clerk command did, said in the reader's language (entrypoints/http/outcome_words.py): every sentence the
ledger's commands write into their outcome has a shape the command line knows, Chinese by default, English on
request, with no Chinese left in the English one."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from entrypoints import catalogue
from entrypoints.catalogue import _CJK
from entrypoints.http.outcome_words import SHAPES, outcome_text

APPLICATION = Path(__file__).resolve().parents[2] / "ledger" / "application.py"


def _describes() -> list[str]:
    """Each command's ``describe=`` in the application, its ``{...}`` parts filled with a sample."""
    found = re.findall(r'describe=f?"([^"]*)"', APPLICATION.read_text(encoding="utf-8"))
    assert len(found) >= 12  # the scan still finds the commands
    return [re.sub(r"\{[^}]*\}", "X-2025", d) for d in found]


@pytest.mark.parametrize("message", _describes())
def test_every_commands_outcome_has_a_known_shape_in_both_languages(message):
    zh, en = outcome_text(message, "zh"), outcome_text(message, "en")
    assert _CJK.search(zh), (message, zh)  # said in Chinese, not passed through
    assert not _CJK.search(en), (message, en)
    unchanged = f"{message}: nothing to change (already recorded)"  # the same command sent again
    assert outcome_text(unchanged, "zh") == f"{zh}：无需变更（此前已记录）"
    assert outcome_text(unchanged, "en") == f"{en}: nothing to change (already recorded)"


def test_every_shape_has_its_sentence_and_a_resend_shows_beijing_time():
    assert all(catalogue.has("clerk_outcomes", key, lang) for key, _ in SHAPES for lang in catalogue.LANGS)
    msg = "request req-1 was already applied at 2026-12-06T08:15:00+00:00; nothing changed"
    assert outcome_text(msg) == "请求 req-1 已于北京时间 2026-12-06 16:15 办理，未重复办理"
    assert outcome_text(msg, "en") == "request req-1 was already carried out at 2026-12-06 16:15 Beijing time; nothing done twice"
    assert outcome_text("residence deceased recorded") == "户籍状态（死亡）已记录"
    assert outcome_text("tax-voucher 16109020000|V1 was already recorded; nothing changed", "en").startswith(
        "tax-voucher 16109020000|V1 was already recorded")


def test_a_maker_checker_sentence_is_split_by_language_and_an_unknown_one_is_kept():
    msg = "滞纳金减免已提交，待另一名有审核权限的经办员审核（变更 C-1，待审核）(waiting for approval: change C-1)"
    assert outcome_text(msg, "en") == "waiting for approval: change C-1"
    assert not outcome_text(msg, "zh").endswith(")") and outcome_text(msg, "zh").startswith("滞纳金减免已提交")
    assert outcome_text("something new happened", "zh") == "something new happened"
