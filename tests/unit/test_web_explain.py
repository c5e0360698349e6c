"""One person's entitlement in Chinese sentences (是否参保、为什么), from the entitlement route's answer."""
from __future__ import annotations

from datetime import date
from typing import Any

from entrypoints.http.web.explain import explain_entitlement
from entrypoints.http.web.labels import yuan


def summary(**over: Any) -> dict[str, Any]:
    base = {"enrollment": {"scheme": "RESIDENT", "region_code": "610902", "grid_code": "610902100001",
                           "start_date": date(2020, 1, 1)},
            "duplicate_enrollment": False, "subsidy_statuses": [], "open_transfers": []}
    return {**base, **over}


def resident_year(**over: Any) -> dict[str, Any]:
    base = {"scheme": "RESIDENT", "region_code": "610902", "grid_code": "610902100001", "enrollment_id": "E1",
            "enrollment_start": date(2020, 1, 1), "enrollment_end": None, "enrollment_end_reason": None,
            "duplicate_enrollment": False, "assessed": True, "standard_fen": 40000, "subsidy_fen": 0,
            "due_fen": 40000, "due_date": date(2024, 12, 31), "subsidy_category": None, "subsidy_since": None,
            "net_paid_fen": 0, "refunded_fen": 0, "reversed_fen": 0, "outstanding_fen": 40000, "overpayment_fen": 0,
            "funded": False, "funded_on": None, "coverage_periods": [], "coverage_start": None,
            "waiting_months": None, "waiting_until": None, "waiting_exemption": None, "first_time": None,
            "gap_years": None, "back_paid_years": None, "continuous_years": 0, "cap_increment_fen": 0}
    return {**base, **over}


def answer(**over: Any) -> dict[str, Any]:
    base = {"year": 2025, "on": date(2025, 3, 1), "covered": False, "scheme": "RESIDENT",
            "policy_version": "610902-2025-d1@abc", "resident_year": resident_year(), "employee_year": None,
            "summary": summary()}
    return {**base, **over}


def lines(explained: dict[str, Any]) -> dict[str, str]:
    return {line["topic"]: line["text"] for line in explained["lines"]}


def test_money_is_yuan_text_from_integer_fen():
    assert [yuan(40000), yuan(5), yuan(-1234), yuan(0), yuan(None)] == ["400.00", "0.05", "-12.34", "0.00", ""]


def test_an_unpaid_year_says_how_much_is_owed_and_what_to_do():
    ex = explain_entitlement(answer())
    assert ex["headline"] == "2025-03-01：2025 年参保费未缴清，不能享受医保待遇"
    assert lines(ex)["缴费"] == "2025 年个人应缴 400.00 元（缴费标准 400.00 元），缴费期限 2024-12-31；已缴 0.00 元，欠缴 400.00 元"
    assert lines(ex)["政策依据"] == "政策版本 610902-2025-d1@abc"
    assert ex["advice"] == "请提醒其缴纳欠缴的 400.00 元（税务 App 或办税服务厅）。"


def test_a_waiting_period_is_explained_with_its_facts():
    ry = resident_year(net_paid_fen=40000, outstanding_fen=0, funded=True, funded_on="2025-02-25",
                       coverage_periods=[["2025-05-25", "2025-12-31"]], coverage_start="2025-05-25",
                       waiting_months=3, waiting_until="2025-05-24", first_time=False, gap_years=1,
                       back_paid_years=1, continuous_years=1)
    ex = explain_entitlement(answer(resident_year=ry))
    assert ex["headline"] == "2025-03-01：已缴费，处于待遇等待期，2025-05-25 起享受待遇"
    assert lines(ex)["待遇等待期"] == \
        "3 个月，至 2025-05-24 止，2025-05-25 起享受待遇（2025-02-25 缴费，此前连续 1 年未参保，已补缴 1 年）"
    assert lines(ex)["待遇享受期"] == "2025-05-25 至 2025-12-31"
    assert ex["advice"].startswith("已缴费，等待期满后自动享受待遇")


def test_a_person_with_no_enrollment_is_told_to_enroll():
    ex = explain_entitlement(answer(resident_year=None, scheme=None, policy_version=None,
                                    summary=summary(enrollment=None)))
    assert ex["headline"] == "2025-03-01：2025 年未参保，不能享受医保待遇"
    assert lines(ex) == {"参保登记": "账本中没有有效的参保登记", "缴费": "账本中没有 2025 年的缴费记录"}
    assert ex["advice"] == "请协助其办理参保登记并缴费。"


def test_a_subsidised_person_comes_with_the_status_and_its_document():
    statuses = [{"category": "EXTREME_POVERTY", "valid_from": "2024-01-01", "valid_until": None,
                 "document_no": "汉民发〔2024〕1号", "department": "汉滨区民政局"}]
    ry = resident_year(subsidy_category="EXTREME_POVERTY", subsidy_since="2024-01-01", subsidy_fen=40000, due_fen=0,
                       outstanding_fen=0, waiting_exemption="SUBSIDISED")
    ex = explain_entitlement(answer(resident_year=ry, summary=summary(subsidy_statuses=statuses)))
    assert lines(ex)["资助参保"] == \
        "本年按「特困人员」资助（2024-01-01 起）；特困人员：2024-01-01 至 今（汉民发〔2024〕1号，汉滨区民政局）"
    assert lines(ex)["待遇等待期"] == "免待遇等待期（医疗救助对象 (资助参保)）"
    assert ex["advice"].startswith("资助参保对象须应保尽保，请优先跟进。")


def test_a_covered_person_needs_no_advice():
    ry = resident_year(net_paid_fen=40000, outstanding_fen=0, funded=True, funded_on="2024-10-08",
                       coverage_periods=[["2025-01-01", "2025-12-31"]], continuous_years=5, cap_increment_fen=100000)
    ex = explain_entitlement(answer(covered=True, resident_year=ry))
    assert ex["headline"] == "2025-03-01：已参保，享受医保待遇（城乡居民基本医疗保险）"
    assert ex["advice"] is None
    assert lines(ex)["连续参保"] == "连续参保 5 年，大病保险最高支付限额提高 1000.00 元"


def test_duplicates_transfers_overpayments_and_the_employee_year_are_said():
    ry = resident_year(duplicate_enrollment=True, net_paid_fen=50000, outstanding_fen=0, overpayment_fen=10000,
                       enrollment_end="2025-02-01", enrollment_end_reason="TRANSFERRED_OUT")
    employee = {"months_assessed": 3, "months_covered": 2, "due_fen": 90000, "net_paid_fen": 60000,
                "outstanding_fen": 30000}
    ex = explain_entitlement(answer(resident_year=ry, employee_year=employee,
                                    summary=summary(duplicate_enrollment=True, open_transfers=["T1"])))
    found = lines(ex)
    assert found["参保登记"].endswith("2025-02-01 终止（转出）")
    assert found["缴费"].endswith("多缴 100.00 元待退费")
    assert found["职工医保"] == "2025 年核定 3 个月，享受待遇 2 个月；应缴 900.00 元，已缴 600.00 元，欠缴 300.00 元"
    assert found["重复参保"] and found["转移接续"] == "有 1 笔转出尚未完成转入"
    assert ex["advice"] == "请联系医保经办机构清理重复参保。"


def test_an_open_transfer_is_said_with_its_state_on_the_day():
    """The route adds each open transfer's state (domain transfer_status on the day): the page says it."""
    awaiting_out = {"transfer_id": "T2", "awaiting": "SENDING", "overdue": False, "overdue_working_days": 0,
                    "due_on": date(2025, 3, 14)}
    late_in = {"transfer_id": "T1", "awaiting": "RECEIVING", "overdue": True, "overdue_working_days": 3,
               "due_on": date(2025, 2, 26)}
    ex = explain_entitlement(answer(transfers=[late_in, awaiting_out], summary=summary(open_transfers=["T1"])))
    assert lines(ex)["转移接续"] == "转移单 T1 待转入，已逾期 3 个工作日；转移单 T2 待转出（须于 2025-03-14 前办结）"
    assert ex["advice"] == "转移接续已超过办理时限，请联系转出地和转入地医保经办机构完成转移接续。"
    on_time = explain_entitlement(answer(transfers=[dict(late_in, overdue=False, overdue_working_days=0)],
                                         summary=summary(open_transfers=["T1"])))
    assert lines(on_time)["转移接续"] == "转移单 T1 待转入（须于 2025-02-26 前办结）"
    assert on_time["advice"] == "请联系转出地和转入地医保经办机构完成转移接续。"
