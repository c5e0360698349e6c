"""The demo report's texts, in Chinese (the default) and English: one catalogue, key -> {zh, en}.

:func:`text` picks the language and fills the ``{placeholders}``; codes (gap reasons,
discrepancy classes, error codes) stay as they are and are printed beside their label.
"""
from __future__ import annotations

from typing import Any

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

MESSAGES: dict[str, dict[str, str]] = {
    "title": {"zh": "== {county}医保参保报告（模拟 {people:,} 人，种子 {seed}）：{year} 年度，截至 {as_of} ==",
              "en": "== County report of {county} ({people:,} simulated people, seed {seed}): coverage year {year} "
                    "as of {as_of} =="},
    "setup": {"zh": "存储 {store}，传输 {transport}", "en": "store {store}, transport {transport}"},
    "headline": {"zh": "全县参保率 {coverage}（{covered:,}/{residents:,} 人）；资助参保对象参保率 {subsidised_coverage}"
                       "（{subsidised_covered:,}/{subsidised:,} 人）",
                 "en": "County coverage {coverage} ({covered:,}/{residents:,} residents); subsidised coverage "
                       "{subsidised_coverage} ({subsidised_covered:,}/{subsidised:,})"},
    "townships": {"zh": "各乡镇参保率：", "en": "Coverage per township:"},
    "grids": {"zh": "参保率最低的网格：", "en": "Lowest-covered grids:"},
    "reasons": {"zh": "未参保人员及原因（应保尽保）：", "en": "Who is not covered, by reason:"},
    "subsidised_missing": {"zh": "未参保的资助参保对象（前 {n} 人，优先处理）：",
                           "en": "Subsidised people not covered (first {n}; they come first):"},
    "gap_top": {"zh": "未参保名单前 {n} 人：", "en": "Top of the gap list (first {n}):"},
    "arrears": {"zh": "欠费（截至 {as_of}）：{rows:,} 笔，欠缴 {outstanding} 元，滞纳金 {late_fee} 元"
                      "（其中 {fee_only:,} 笔已缴本金、滞纳金未缴）；按险种：{by_kind}",
                "en": "Arrears as of {as_of}: {rows:,} rows, outstanding {outstanding} yuan, late fees {late_fee} "
                      "yuan ({fee_only:,} paid late with the late fee unpaid); by scheme: {by_kind}"},
    "transfers": {"zh": "转移接续（{region}，截至 {as_of}）：转入待办 {incoming}，转出待办 {outgoing}，超期 {overdue}，"
                        "已办结 {done}",
                  "en": "Transfers of {region} as of {as_of}: {incoming} incoming open, {outgoing} outgoing open, "
                        "{overdue} overdue, {done} done"},
    "recon": {"zh": "对账：税务日对账单 {statements:,} 份（{records:,} 条记录）；状态：{states}；接收错误：{errors}",
              "en": "Reconciliation: {statements:,} daily tax statements ({records:,} records); states: {states}; "
                    "intake errors: {errors}"},
    "recon_none": {"zh": "无", "en": "none"},
    "recon_counties": {"zh": "按区县（元）：", "en": "Per county (yuan):"},
    "recon_offices": {"zh": "按税务机关（元；已解释 = 差异明细所能说明的金额）：",
                      "en": "Per tax office (yuan; explained = what the discrepancies account for):"},
    "recon_classes": {"zh": "未结差异，按类别（发现 / 模拟数据放入）：",
                      "en": "Open discrepancies by class (found / put in by the generator):"},
    "recon_open": {"zh": "未结差异明细：", "en": "Open discrepancies:"},
    "foreign_region": {
        "zh": "注：{region}（{place}）不属本系统承办地区。这是模拟数据有意放入的坏记录：本县税务机关收到写明参保地 "
              "{region} 的缴费，入账时以 REGION_UNKNOWN 拒收并留存，对账单中仍有这些缴费，"
              "故记为“账内缺失”（MISSING_IN_LEDGER），差额全部已解释。",
        "en": "Note: {region} ({place}) is not a region this ledger serves. It is a bad record the generator puts in "
              "on purpose: the county's tax office took payments naming {region} as the insured region; the ledger "
              "refused them (REGION_UNKNOWN) and kept them, the statements still list them, so they show as "
              "MISSING_IN_LEDGER and the whole difference is explained."},
    "history": {"zh": "一个人的完整记录（重放事件，{masked_id}）：", "en": "One person's history, replayed ({masked_id}):"},
    "published": {"zh": "已向 ledger.events.v1 发布 {n:,} 条账本事件。", "en": "Published {n:,} ledger events to "
                                                                            "ledger.events.v1."},
    "checks": {"zh": "与模拟数据真值的核对：", "en": "Checks against the generator's truth:"},
    "timings": {"zh": "用时（秒）：{timings}", "en": "Timings (s): {timings}"},
    "chart_written": {"zh": "图表已写入 {path}：蓝柱 = 参保率，橙柱 = 资助参保对象参保率，横轴为乡镇代码末三位",
                      "en": "chart written to {path}: blue = coverage, orange = subsidised coverage, "
                            "townships by the last 3 digits of their code"},
    "chart_title": {"zh": "{year} 年度各乡镇参保率", "en": "Coverage per township, {year}"},
    "chart_overall": {"zh": "参保率", "en": "coverage"},
    "chart_subsidised": {"zh": "资助参保对象参保率", "en": "subsidised coverage"},
    "chart_no_target": {"zh": "（政策表未规定参保率目标，图中不画目标线）",
                        "en": "(the policy tables declare no coverage target; no target line drawn)"},
    "next_steps": {
        "zh": "== 在网页和命令行查看同一份数据 ==\n"
              "演示数据保存在 {state_dir}（下次运行演示时会被替换）。\n"
              "  1. 启动服务（首次启动时生成本县经办员令牌和稽核员令牌，只显示这一次）：\n"
              "       .venv/bin/ledger serve --demo\n"
              "  2. 浏览器打开网格员页面 http://127.0.0.1:8080/web/ ，输入上一步显示的令牌；"
              "接口文档 http://127.0.0.1:8080/docs\n"
              "  3. 命令行查看网格 {grid} 的未参保名单（LEDGER_TOKEN 填经办员令牌）：\n"
              "       {env} LEDGER_TOKEN=<经办员令牌> .venv/bin/ledger gaps {grid} --year {year} --as-of {as_of}",
        "en": "== The same data on the web page and the command line ==\n"
              "The demo's data is kept in {state_dir} (replaced by the next demo run).\n"
              "  1. Start the server (its first start creates a clerk token for the county and an auditor token, "
              "shown only then):\n"
              "       .venv/bin/ledger serve --demo\n"
              "  2. Open the grid page http://127.0.0.1:8080/web/ and enter a token from step 1; "
              "API docs at http://127.0.0.1:8080/docs\n"
              "  3. Grid {grid}'s gap list on the command line (LEDGER_TOKEN = the clerk token):\n"
              "       {env} LEDGER_TOKEN=<clerk token> .venv/bin/ledger gaps {grid} --year {year} --as-of {as_of}"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "NO"},
}

#: Column headings of the report's tables.
COLUMNS: dict[str, dict[str, str]] = {
    "township": {"zh": "乡镇代码", "en": "township"}, "name": {"zh": "名称", "en": "name"},
    "residents": {"zh": "常住人数", "en": "residents"}, "covered": {"zh": "已参保", "en": "covered"},
    "coverage": {"zh": "参保率", "en": "coverage"}, "subsidised": {"zh": "资助对象", "en": "subsidised"},
    "subsidised_covered": {"zh": "资助已参保", "en": "subsidised covered"},
    "subsidised_coverage": {"zh": "资助参保率", "en": "subsidised coverage"},
    "grid": {"zh": "网格", "en": "grid"}, "gaps": {"zh": "未参保", "en": "gaps"},
    "reason": {"zh": "原因代码", "en": "reason"}, "label": {"zh": "原因", "en": "label"},
    "people": {"zh": "人数", "en": "people"}, "masked_id": {"zh": "证件号（脱敏）", "en": "ID (masked)"},
    "masked_name": {"zh": "姓名", "en": "name"}, "grid_code": {"zh": "网格", "en": "grid"},
    "transfer_id": {"zh": "转移单号", "en": "transfer"}, "direction": {"zh": "方向", "en": "direction"},
    "from": {"zh": "转出地", "en": "from"}, "to": {"zh": "转入地", "en": "to"},
    "due_on": {"zh": "办结时限", "en": "due on"}, "overdue_days": {"zh": "超期工作日", "en": "overdue days"},
    "region": {"zh": "区县", "en": "region"}, "days": {"zh": "天数", "en": "days"},
    "statements": {"zh": "对账单", "en": "statements"}, "collected": {"zh": "税务征收", "en": "collected"},
    "recorded": {"zh": "账本入账", "en": "recorded"}, "difference": {"zh": "差额", "en": "difference"},
    "explained": {"zh": "已解释", "en": "explained"}, "ties_out": {"zh": "勾稽一致", "en": "ties out"},
    "office": {"zh": "税务机关", "en": "office"}, "lines": {"zh": "明细行", "en": "lines"},
    "class": {"zh": "差异类别", "en": "class"}, "found": {"zh": "发现", "en": "found"},
    "expected": {"zh": "放入", "en": "expected"}, "delta": {"zh": "金额差（元）", "en": "delta (yuan)"},
    "business_date": {"zh": "业务日期", "en": "business date"}, "voucher_no": {"zh": "票证号", "en": "voucher"},
    "line_no": {"zh": "行号", "en": "line"}, "delta_count": {"zh": "笔数差", "en": "count delta"},
    "v": {"zh": "版本", "en": "v"}, "recorded_at": {"zh": "记录时间", "en": "recorded"},
    "effective": {"zh": "生效日期", "en": "effective"}, "what": {"zh": "事项", "en": "what"},
    "due": {"zh": "应缴（元）", "en": "due (yuan)"}, "paid": {"zh": "已缴（元）", "en": "paid (yuan)"},
    "covered_from": {"zh": "待遇起始", "en": "covered from"}, "balance": {"zh": "个人账户（元）", "en": "balance (yuan)"},
}

#: Timing and check names, and arrears kinds, as a person reads them.
TERMS: dict[str, dict[str, str]] = {
    "generate": {"zh": "生成", "en": "generate"}, "feeds_to_ledger": {"zh": "数据入账", "en": "feeds to ledger"},
    "publish": {"zh": "发布", "en": "publish"}, "project": {"zh": "视图", "en": "project"},
    "statements": {"zh": "对账单", "en": "statements"}, "reconcile": {"zh": "对账", "en": "reconcile"},
    "RESIDENT": {"zh": "城乡居民", "en": "resident scheme"}, "EMPLOYEE": {"zh": "职工", "en": "employee scheme"},
    "gap_people": {"zh": "未参保人员与真值一致", "en": "gap people"},
    "bad_records_kept": {"zh": "坏记录均被拒收并留存", "en": "bad records kept"},
    "all_consumed": {"zh": "各数据源全部消费", "en": "all consumed"},
    "reconciliation": {"zh": "对账差异与真值一致", "en": "reconciliation"},
    "INCOMING": {"zh": "转入", "en": "INCOMING"}, "OUTGOING": {"zh": "转出", "en": "OUTGOING"},
    "RECONCILED": {"zh": "已对平", "en": "RECONCILED"},
}

#: Places outside the county a report may name.
PLACES: dict[str, dict[str, str]] = {"110105": {"zh": "北京市朝阳区", "en": "Chaoyang District, Beijing"}}


def lang_of(value: str | None) -> str:
    """``zh`` unless the value asks for English (``en``, ``en_US.UTF-8``, ...)."""
    return "en" if (value or "").lower().startswith("en") else DEFAULT_LANG


def text(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    return MESSAGES[key][lang].format(**values)


def headings(lang: str) -> dict[str, str]:
    return {k: v[lang] for k, v in COLUMNS.items()}


def term(key: str, lang: str) -> str:
    return TERMS.get(key, {}).get(lang, key)


__all__ = ["COLUMNS", "DEFAULT_LANG", "LANGS", "MESSAGES", "PLACES", "TERMS", "headings", "lang_of", "term", "text"]
