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
    "cases": {"zh": "== {year} 年度业务办理（经办员、税务、民政的模拟操作，截至 {as_of}）==",
              "en": "== Business of {year} (the clerk's, tax bureau's and civil affairs' simulated work, as of {as_of}) =="},
    "case_late_fees": {
        "zh": "滞纳金：单位 {employer} 的 {staff} 名职工 {months} 逾期缴费，本金缴清后仍欠滞纳金 {accrued} 元；"
              "税务征收滞纳金 {collected} 元，审批减免 {waived} 元（审批人 {approver}，理由：{reason}），尚欠 {owed} 元。"
              "录入人本人审批的减免被拒绝（{refused}）。",
        "en": "Late fees: employer {employer}'s {staff} employees paid {months} late; after the contributions were paid "
              "{accrued} yuan of late fee was still owed; {collected} yuan collected by the tax bureau, {waived} yuan "
              "waived (approver {approver}, reason: {reason}); {owed} yuan owed. A waiver approved by the clerk "
              "recording it was refused ({refused})."},
    "case_fee_arithmetic": {"zh": "  计算示例：{arithmetic}", "en": "  Arithmetic, for example: {arithmetic}"},
    "case_statuses": {
        "zh": "资助身份（经办员录入）：特困人员当年应缴 {ep_due} 元，{ep_covered}；低保对象又认定特困，资助 {two_subsidy} 元"
              "（取较高者，不是两者之和 {two_sum} 元），应缴 {two_due} 元；先缴 {paid} 元、后认定特困，应退 {owed_back} 元；"
              "认定后于年度开始前取消，应缴 {revoked_due} 元。",
        "en": "Subsidised statuses (entered by the clerk): an extremely poor person owes {ep_due} yuan, {ep_covered}; "
              "a minimum-living recipient also found extremely poor gets {two_subsidy} yuan (the more generous, not "
              "the sum {two_sum} yuan) and owes {two_due} yuan; {paid} yuan paid before the status was granted: "
              "{owed_back} yuan owed back; a status revoked before the year: {revoked_due} yuan due."},
    "case_covered": {"zh": "1 月 1 日起享受待遇、无等待期", "en": "covered from 1 January with no waiting period"},
    "case_not_covered": {"zh": "尚未享受待遇", "en": "not covered yet"},
    "case_arrears": {"zh": "单位欠费（截至 {as_of}）：{count:,} 家单位，欠缴与滞纳金合计 {total} 元；按单位导出 {path}",
                     "en": "Employer arrears as of {as_of}: {count:,} employers, {total} yuan with late fees; "
                           "exported per employer to {path}"},
    "case_statements": {
        "zh": "对账单文件：{file}（{statements:,} 份对账单，{lines:,} 行）经 ledger feed statements 接收，{reconciled:,} 份已对平；"
              "缺对账单（STATEMENT_MISSING）：{missing}",
        "en": "Statements file: {file} ({statements:,} statements, {lines:,} lines) fed by ledger feed statements, "
              "{reconciled:,} reconciled; missing statements (STATEMENT_MISSING): {missing}"},
    "case_merge": {
        "zh": "参保人合并：{merged} 是 {kept} 录错出生日期的重复登记，经办员 {clerk} 提出合并，本人审批被拒绝（{refused}），"
              "审核员 {approver} 批准；全区居民 {residents_before:,} → {residents_after:,} 人，未参保名单 {gaps_before:,} → "
              "{gaps_after:,} 人，欠费 {arrears_before:,} → {arrears_after:,} 人；之后以错号缴纳的 {paid} 元记到保留的参保人名下。",
        "en": "Person merge: {merged} is {kept} registered again with a mistyped birth date; clerk {clerk} proposed the "
              "merge, self-approval was refused ({refused}), approver {approver} approved it; residents "
              "{residents_before:,} -> {residents_after:,}, gap list {gaps_before:,} -> {gaps_after:,}, in arrears "
              "{arrears_before:,} -> {arrears_after:,}; {paid} yuan paid later under the mistyped number went to the "
              "person kept."},
    "case_duplicate": {
        "zh": "重复参保：{person} 已缴居民医保后于 {hired_on} 参加职工医保，终止居民参保（DUPLICATE_RESOLVED）经审核批准，"
              "应退重复缴费 {refund} 元；待审核期间参保记录未变。",
        "en": "Duplicate enrollment: {person} paid the resident scheme, then joined the employee scheme on {hired_on}; "
              "ending the resident enrollment (DUPLICATE_RESOLVED) was approved, {refund} yuan owed back; nothing "
              "changed while it waited."},
    "case_correction": {
        "zh": "大额退费：{person} {month} 被银行重复扣款，退费 {amount} 元超过双人复核限额 {threshold} 元，提交后待审核，"
              "期间该月实缴仍为 {pending} 元；审核批准后为 {after} 元。",
        "en": "Large correction: {person}'s {month} was debited twice; the {amount} yuan refund is above the approval "
              "threshold of {threshold} yuan, so it waited for approval with the month still showing {pending} yuan "
              "paid; {after} yuan once approved."},
    "case_missing_day": {"zh": "{day} 税务机关 {office}（{rows} 笔，{amount} 元）",
                         "en": "{day} tax office {office} ({rows} receipts, {amount} yuan)"},
    "checks_summary": {"zh": "与模拟数据真值核对：{n} 项全部一致（ledger demo --check 显示核对明细）",
                       "en": "Checks against the generator's truth: all {n} agree (ledger demo --check shows the figures)"},
    "checks_failed": {"zh": "与模拟数据真值核对：{n} 项中 {failed} 项不一致：{names}（ledger demo --check 显示核对明细）",
                      "en": "Checks against the generator's truth: {failed} of {n} disagree: {names} "
                            "(ledger demo --check shows the figures)"},
    "check_ok": {"zh": "一致", "en": "OK"}, "check_failed": {"zh": "不一致", "en": "FAIL"},
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
    "employer_id": {"zh": "单位编号", "en": "employer"}, "months": {"zh": "欠费月数", "en": "months"},
    "persons": {"zh": "职工人数", "en": "employees"}, "outstanding": {"zh": "欠缴（元）", "en": "outstanding (yuan)"},
    "late_fee": {"zh": "滞纳金（元）", "en": "late fee (yuan)"}, "total": {"zh": "合计（元）", "en": "total (yuan)"},
    "days_overdue": {"zh": "最长逾期天数", "en": "days overdue"},
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
    "late_fees": {"zh": "滞纳金应计、征收、减免与真值一致", "en": "late fees"},
    "clerk_statuses": {"zh": "经办员录入资助身份后的应缴与应退一致", "en": "clerk-entered statuses"},
    "employer_arrears": {"zh": "单位欠费合计及导出与真值一致", "en": "employer arrears"},
    "statement_file": {"zh": "对账单文件对平，缺对账单日期一致", "en": "statements file"},
    "person_merge": {"zh": "参保人合并后名单、覆盖、欠费只计一人，审核留痕一致", "en": "person merge"},
    "duplicate_enrollment": {"zh": "重复参保终止后的应退金额一致", "en": "duplicate enrollment"},
    "large_correction": {"zh": "超限额退费待审核不变动数字、批准后一致", "en": "large correction"},
    "residents": {"zh": "居民", "en": "residents"}, "covered": {"zh": "已参保", "en": "covered"},
    "gaps": {"zh": "未参保名单", "en": "gap list"}, "in_arrears": {"zh": "欠费", "en": "in arrears"},
    "cases": {"zh": "业务办理", "en": "business cases"},
    "INCOMING": {"zh": "转入", "en": "INCOMING"}, "OUTGOING": {"zh": "转出", "en": "OUTGOING"},
    "RECONCILED": {"zh": "已对平", "en": "RECONCILED"},
    "sqlite": {"zh": "SQLite 本地文件", "en": "sqlite"}, "postgres": {"zh": "PostgreSQL", "en": "postgres"},
    "memory": {"zh": "内存", "en": "memory"},
    "in-process": {"zh": "进程内消息", "en": "in-process"}, "kafka": {"zh": "Kafka", "en": "kafka"},
}

#: Places outside the county a report may name.
PLACES: dict[str, dict[str, str]] = {"110105": {"zh": "北京市朝阳区", "en": "Chaoyang District, Beijing"}}


#: The auditor's printable report (``ledger history --html``): key -> {zh, en}.
AUDIT: dict[str, dict[str, str]] = {
    "title": {"zh": "参保人权益记录审计报告", "en": "Insured person: history and verification"},
    "doc_title": {"zh": "审计报告 {masked_id}", "en": "Audit report {masked_id}"},
    "page_before": {"zh": "第 ", "en": "Page "},
    "page_after": {"zh": " 页", "en": ""},
    "name": {"zh": "姓名", "en": "name"},
    "name_masked": {"zh": "（已脱敏；--reveal 显示全名）", "en": "(masked; --reveal shows it in full)"},
    "id": {"zh": "证件号码（{id_type}，脱敏）", "en": "ID ({id_type}, masked)"},
    "person_id": {"zh": "参保人内部编号", "en": "person id"},
    "events": {"zh": "事件数", "en": "events"},
    "year": {"zh": "显示的参保年度", "en": "coverage year shown"},
    "generated_at": {"zh": "报告生成时间", "en": "generated at"},
    "position": {"zh": "账本位置", "en": "ledger position"},
    "position_value": {"zh": "通知序号 {n}", "en": "notification {n}"},
    "chain_head": {"zh": "哈希链链头", "en": "chain head"},
    "tz": {"zh": "北京时间", "en": "Beijing time"},
    "verification": {"zh": "存储事件校验", "en": "Verification of the stored events"},
    "not_verified": {"zh": "本报告未做校验（请运行 ledger verify）。", "en": "Not verified in this report (run ledger verify)."},
    "verified": {"zh": "校验通过：重新计算了 {n} 条存储事件的摘要，哈希链完整{anchor}。",
                 "en": "Verified: {n} stored events re-digested, the hash chain is intact{anchor}."},
    "verified_anchor": {"zh": "，与封存的链头一致", "en": " and matches its anchor"},
    "not_clean": {"zh": "校验未通过：发现 {n} 个问题。", "en": "NOT CLEAN: {n} finding(s)."},
    "finding": {"zh": "问题代码", "en": "finding"}, "version": {"zh": "版本", "en": "version"},
    "kind": {"zh": "类别", "en": "kind"}, "detail": {"zh": "说明", "en": "detail"},
    "checked_at": {"zh": "校验时间 {at}，账本位置 {n}。", "en": "Checked at {at}, ledger position {n}."},
    "history": {"zh": "事件记录", "en": "History"},
    "col_v": {"zh": "版本", "en": "v"}, "col_recorded": {"zh": "记录时间（北京时间）", "en": "recorded (Beijing time)"},
    "col_effective": {"zh": "生效日期", "en": "effective"}, "col_event": {"zh": "事项", "en": "event"},
    "col_record": {"zh": "来源记录", "en": "record"}, "col_hash": {"zh": "事件哈希（前 16 位）", "en": "event hash (first 16)"},
    "col_state": {"zh": "事后状态", "en": "state after"},
    "prev": {"zh": "前序", "en": "prev"},
    "record_tax_voucher": {"zh": "税务缴费凭证 {id}", "en": "tax payment voucher {id}"},
    "record_tax_refund": {"zh": "税务退费凭证 {id}", "en": "tax refund voucher {id}"},
    "record_tax_reversal": {"zh": "税务冲正凭证 {id}", "en": "tax reversal voucher {id}"},
    "record_status_document": {"zh": "民政认定文书 {id}", "en": "civil-affairs document {id}"},
    "record_registry_record": {"zh": "户籍记录 {id}", "en": "household registry record {id}"},
    "record_waiver": {"zh": "减免审批 {id}", "en": "waiver {id}"},
    "record_transfer": {"zh": "转移接续单 {id}", "en": "transfer {id}"},
    "record_change": {"zh": "双人复核变更 {id}", "en": "maker-checker change {id}"},
    "issuer": {"zh": "（{issuer}）", "en": " ({issuer})"},
    "record_clerk": {"zh": "经办人 {user} 请求 {request_id}", "en": "clerk {user} request {request_id}"},
    "record_clerk_no_request": {"zh": "经办人 {user}", "en": "clerk {user}"},
    "record_feed": {"zh": "数据源 {feed}", "en": "feed {feed}"},
    "record_batch": {"zh": "批量导入", "en": "batch import"},
    "record_system": {"zh": "系统（{source}）", "en": "system ({source})"},
    "as_of": {"zh": "截至 {at} 时账本所知 —— 参保年度 {year}", "en": "As known at {at} — coverage year {year}"},
    "as_of_held": {"zh": "当时账本记有此人第 1 至第 {known} 版事件；此后又记录 {since} 条（现为第 {now} 版）。",
                   "en": "The ledger then held versions 1 to {known} of this person; {since} event(s) were recorded "
                         "since (now version {now})."},
    "figure": {"zh": "项目", "en": "figure"}, "then": {"zh": "当时所知", "en": "known then"},
    "now": {"zh": "现在所知", "en": "known now"}, "changed": {"zh": "变化项目", "en": "changed figure"},
    "caused_by": {"zh": "原因事件", "en": "caused by"},
    "untraced": {"zh": "（视图未追溯：此后记录的事件）", "en": "(not traced by the projection: events recorded since)"},
    "no_change": {"zh": "此后没有项目发生变化。", "en": "No figure changed since."},
    "covered_on": {"zh": "{day} 是否享受待遇？", "en": "Covered on {day}?"},
    "known_then": {"zh": "当时所知", "en": "Known then"}, "known_now": {"zh": "现在所知", "en": "Known now"},
    "yes": {"zh": "是", "en": "YES"}, "no": {"zh": "否", "en": "NO"},
    "signoff": {"zh": "审计签字", "en": "Sign-off"},
    "signoff_facts": {"zh": "本报告生成于 {generated}；截至时点 {as_of}；共 {n} 条事件；哈希链链头 {head}。",
                      "en": "Report generated {generated}; as of {as_of}; {n} events; chain head {head}."},
    "as_of_now": {"zh": "生成时（账本位置 {n}）", "en": "the time of generation (ledger position {n})"},
    "auditor": {"zh": "审计人", "en": "Auditor"}, "date": {"zh": "日期", "en": "Date"},
    "signature": {"zh": "签字", "en": "Signature"},
    "footer": {"zh": "依据账本存储的事件（非快照）在通知序号 {n} 处计算，生成于 {generated}。各项数字为每个事件之后的"
                     "权益视图；金额单位为元；证件号码已脱敏（个人信息保护法）。",
               "en": "Computed from the ledger's stored events (never snapshots) at notification {n}, generated "
                     "{generated}. Figures are those of the entitlement projection after each event; amounts in "
                     "yuan. The ID number is masked (个人信息保护法)."},
    "state_enrolled": {"zh": "参保 {v}", "en": "enrolled {v}"}, "state_due": {"zh": "应缴 {v} 元", "en": "due {v} yuan"},
    "state_paid": {"zh": "已缴 {v} 元", "en": "paid {v} yuan"},
    "state_outstanding": {"zh": "欠缴 {v} 元", "en": "outstanding {v} yuan"},
    "state_overpaid": {"zh": "多缴 {v} 元", "en": "overpaid {v} yuan"},
    "state_covered": {"zh": "待遇期 {v}", "en": "covered {v}"},
    "state_waiting": {"zh": "等待期至 {v}", "en": "waiting until {v}"},
    "state_account": {"zh": "个人账户 {v} 元", "en": "account {v} yuan"},
    "state_year": {"zh": "{v} 年度", "en": "{v}"},
}

#: Figures of the person's state as the printable report names them.
AUDIT_FIGURES: dict[str, dict[str, str]] = {
    "enrolled_in": {"zh": "参保险种及地区", "en": "enrolled in"},
    "residence_status": {"zh": "户籍状态", "en": "residence"},
    "account_balance_fen": {"zh": "个人账户余额（元）", "en": "account balance (yuan)"},
    "contribution_months": {"zh": "缴费月数", "en": "contribution months"},
    "scheme": {"zh": "险种", "en": "scheme"}, "region_code": {"zh": "参保地", "en": "region"},
    "enrollment_state": {"zh": "参保状态", "en": "enrollment"},
    "standard_fen": {"zh": "缴费标准（元）", "en": "standard (yuan)"},
    "subsidy_fen": {"zh": "资助金额（元）", "en": "subsidy (yuan)"},
    "subsidy_category": {"zh": "资助类别", "en": "subsidised group"},
    "due_fen": {"zh": "应缴（元）", "en": "due (yuan)"}, "due_date": {"zh": "缴费截止日", "en": "due by"},
    "net_paid_fen": {"zh": "实缴净额（元）", "en": "paid, net (yuan)"},
    "refunded_fen": {"zh": "已退费（元）", "en": "refunded (yuan)"},
    "reversed_fen": {"zh": "已冲正（元）", "en": "reversed (yuan)"},
    "outstanding_fen": {"zh": "欠缴（元）", "en": "outstanding (yuan)"},
    "overpayment_fen": {"zh": "多缴（元）", "en": "overpaid (yuan)"},
    "funded": {"zh": "资金到位", "en": "funded"}, "covered_from": {"zh": "待遇起始", "en": "covered from"},
    "covered_to": {"zh": "待遇终止", "en": "covered to"}, "coverage_periods": {"zh": "待遇期", "en": "coverage periods"},
    "waiting_until": {"zh": "等待期至", "en": "waiting until"},
    "continuous_years": {"zh": "连续参保年数", "en": "continuous years"},
    "policy_version": {"zh": "政策版本", "en": "policy version"},
}


#: Each person event in one line of Chinese, for the printable report (``describe_zh`` fills them; the
#: English line is :func:`entrypoints.audit.describe.describe`, the one the JSON and CLI answers carry).
AUDIT_EVENTS: dict[str, dict[str, str]] = {
    "Registered": {"zh": "参保人登记（{id_type}{born}{grid}）"},
    "Enrolled": {"zh": "在 {region} 参加{scheme}（{channel}），自 {effective} 起，参保编号 {enrollment_id}{dup}"},
    "EnrollmentEnded": {"zh": "参保 {enrollment_id} 于 {effective} 终止：{reason}"},
    "ContributionAssessed": {"zh": "缴费核定：{period} 年度，{region}，缴费标准 {standard} 元{subsidy}，应缴 {due} 元，"
                                   "缴费截止 {due_date}（政策 {policy}）"},
    "ContributionAssessedEmployee": {"zh": "缴费核定：{period} 职工医保，缴费基数 {base} 元，单位 {employer} 元 + 个人 "
                                           "{employee} 元，应缴 {due} 元，截止 {due_date}（政策 {policy}）"},
    "SubsidyGranted": {"zh": "资助参保身份认定：{category}，自 {valid_from} 起{until}，{department} 文书 {document_no}"},
    "SubsidyRevoked": {"zh": "资助参保身份取消：自 {revoked_from} 起，{department} 文书 {document_no}"},
    "ContributionPaid": {"zh": "缴费 {amount} 元：{scheme}，{period}，{region}；税务凭证 {voucher_no}"
                               "（税务机关 {tax_office}）{channel}"},
    "ContributionRefunded": {"zh": "退费 {amount} 元：原凭证 {original}，退费凭证 {voucher}{reason}"},
    "ContributionReversed": {"zh": "冲正 {amount} 元：原凭证 {original}，冲正凭证 {voucher}{reason}"},
    "ResidenceRecorded": {"zh": "户籍记录 {record_id}：{status}{grid}"},
    "TransferRequested": {"zh": "转移接续申请 {transfer_id}：{region} 转往 {counterpart}"},
    "TransferOutCompleted": {"zh": "转出完成 {transfer_id}：{region} 转往 {counterpart}，参保 {enrollment_id} 中止，"
                                   "转出个人账户 {balance} 元、缴费月数 {months}"},
    "TransferInCompleted": {"zh": "转入完成 {transfer_id}：自 {counterpart} 转入 {region}，划入个人账户 {balance} 元，"
                                  "计入缴费月数 {months}"},
    "TransferredOut": {"zh": "转出 {transfer_id}：转往 {counterpart}，转出个人账户 {balance} 元、缴费月数 {months}"},
    "TransferredIn": {"zh": "转入 {transfer_id}：自 {counterpart} 转入，划入个人账户 {balance} 元，计入缴费月数 {months}"},
    "TransferCancelled": {"zh": "转移 {transfer_id} {what}：{reason}；中止的参保恢复"},
    "AccountCredited": {"zh": "个人账户划入 {amount} 元：{reason}{ref}"},
    "AccountDebited": {"zh": "个人账户支出 {amount} 元：{reason}{ref}"},
    "LateFeePaid": {"zh": "缴纳滞纳金 {amount} 元：职工医保 {period}，税务凭证 {voucher_no}（税务机关 {tax_office}）"},
    "LateFeeWaived": {"zh": "滞纳金减免：职工医保 {period}，{reason}，审批人 {approver}"},
    "PersonMerged": {"zh": "参保人合并：参保人 {other} 的记录并入本人（{kind}：{reason}），提出人 {maker}，审核人 {checker}，"
                           "变更 {change_id}"},
    "PersonMergedInto": {"zh": "参保人合并：本记录并入参保人 {other}（{kind}：{reason}），此后不再记录新事实，提出人 {maker}，"
                               "审核人 {checker}，变更 {change_id}"},
}
AUDIT_WORDS: dict[str, dict[str, str]] = {
    "RESIDENT": {"zh": "城乡居民医保"}, "EMPLOYEE": {"zh": "职工医保"},
    "RESIDENT_ID": {"zh": "居民身份证"},
    "COUNTER": {"zh": "窗口办理"}, "BATCH_IMPORT": {"zh": "批量导入"}, "TAX_PAYMENT": {"zh": "先缴费后登记"},
    "TRANSFER_IN": {"zh": "转移接续转入"}, "NEWBORN": {"zh": "新生儿参保"},
    "DIED": {"zh": "死亡"}, "MOVED_OUT": {"zh": "迁出"}, "TRANSFERRED_OUT": {"zh": "转出"},
    "SWITCHED_SCHEME": {"zh": "变更险种"}, "DUPLICATE_RESOLVED": {"zh": "重复参保处理"},
    "DUPLICATE": {"zh": "重复登记"}, "ID_UPGRADE": {"zh": "15 位身份证号升为 18 位"}, "ID_CORRECTION": {"zh": "证件号码更正"},
    "DECEASED": {"zh": "死亡"}, "EXTREME_POVERTY": {"zh": "特困人员"}, "ORPHAN": {"zh": "孤儿"},
    "DE_FACTO_ORPHAN": {"zh": "事实无人抚养儿童"}, "MIN_LIVING": {"zh": "低保对象"},
    "RELAPSED_POVERTY": {"zh": "返贫致贫人口"}, "MONITORED": {"zh": "监测对象"}, "LOW_INCOME_MARGINAL": {"zh": "低保边缘"},
}


def audit_text(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    return AUDIT[key][lang].format(**values)


def lang_of(value: str | None) -> str:
    """``zh`` unless the value asks for English (``en``, ``en_US.UTF-8``, ...)."""
    return "en" if (value or "").lower().startswith("en") else DEFAULT_LANG


def text(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    return MESSAGES[key][lang].format(**values)


def headings(lang: str) -> dict[str, str]:
    return {k: v[lang] for k, v in COLUMNS.items()}


def term(key: str, lang: str) -> str:
    return TERMS.get(key, {}).get(lang, key)


__all__ = ["AUDIT", "AUDIT_EVENTS", "AUDIT_FIGURES", "AUDIT_WORDS", "audit_text", "COLUMNS", "DEFAULT_LANG", "LANGS", "MESSAGES", "PLACES", "TERMS", "headings", "lang_of", "term", "text"]
