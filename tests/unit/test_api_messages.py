"""API error messages: Chinese by default, English with ``Accept-Language: en``; codes never change (#21).

Each validation error type our request models can produce is sent for real through the app and
checked in both languages: the Chinese names the field by its label (姓名（name）) and the allowed
values by theirs (城乡居民（RESIDENT）); ``details.errors[*].message_en`` is always English.
"""
from __future__ import annotations

import pytest

from entrypoints.http.api_messages import FIELDS, PROBLEMS, VALUES, lang_of_header
from entrypoints.http.models import ERROR_CODES
from tests.unit.http_support import CLERK, HANBIN, TAX, client, enrollment, number, person_path, system, tax_payment  # noqa: F401

EN = {"Accept-Language": "en"}
RAW = ("Input should be", "Field required", "Value error", "Extra inputs are not permitted")


def _enroll(**over):
    body = enrollment(number(1))
    body.update(over)
    return "post", "/enrollments", {"json": body}


def _without(key):
    body = enrollment(number(1))
    del body[key]
    return "post", "/enrollments", {"json": body}


def _credit(amount):
    body = {"amount_fen": amount, "reason": "CORRECTION", "reference": "窗口更正-1", "effective_date": "2025-01-05"}
    return "post", person_path(number(1), "/account/credits"), {"json": body}


def _year(year):
    return "post", person_path(number(1), "/assessments/resident-year"), {"json": {"year": year}}


def _tax(**over):
    return "post", "/tax/payments", {"json": tax_payment(number(1), **over), "headers": TAX}


#: (pydantic or custom type, request, code, Chinese fragment, English fragment)
CASES = [
    ("missing", _without("name"), "BODY_INVALID", "缺少必填项：姓名（name）", "name: is required"),
    ("extra_forbidden", _enroll(nickname="x"), "BODY_INVALID", "nickname不是本请求的字段",
     "nickname: is not a field of this request"),
    ("json_invalid", ("post", "/enrollments", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
     "BODY_INVALID", "请求体不是合法的 JSON", "the body is not valid JSON"),
    ("model_attributes_type", ("post", "/enrollments", {"json": [1, 2]}), "BODY_INVALID", "JSON 对象",
     "must be a JSON object"),
    ("string_type", _enroll(name=5), "BODY_INVALID", "姓名（name）应为文字", "name: must be text"),
    ("string_too_short", _enroll(name="  "), "BODY_INVALID", "姓名（name）不能为空", "name: must have at least 1"),
    ("string_too_long", _enroll(id_number="1" * 41), "BODY_INVALID", "证件号码（id_number）过长：最多 40 个字符",
     "id_number: must have at most 40 characters"),
    ("string_pattern_mismatch", _enroll(region_code="61090"), "BODY_INVALID", "参保地（region_code）格式不对：应为 6 位",
     "region_code: has the wrong shape"),
    ("literal_error", _enroll(scheme="RURAL"), "BODY_INVALID",
     "险种（scheme）只能是以下之一：城乡居民（RESIDENT）、职工（EMPLOYEE）", "scheme: must be one of 'RESIDENT' or 'EMPLOYEE'"),
    ("bool_parsing", _enroll(flexible="maybe"), "BODY_INVALID", "灵活就业（flexible）应为 true 或 false",
     "flexible: must be true or false"),
    ("int_parsing", _year("二〇二五"), "BODY_INVALID", "年度（year）应为整数", "year: must be a whole number"),
    ("int_from_float", _year(2025.5), "BODY_INVALID", "年度（year）应为整数，不能有小数", "year: must be a whole number"),
    ("greater_than_equal", _year(1999), "BODY_INVALID", "年度（year）不能小于 2000", "year: must be at least 2000"),
    ("less_than_equal", _year(2101), "BODY_INVALID", "年度（year）不能大于 2100", "year: must be at most 2100"),
    ("date_invalid", _enroll(effective_date="2024/09/10"), "DATE_INVALID", "生效日期（effective_date）应为日期，格式 YYYY-MM-DD",
     "effective_date: must be a calendar date written YYYY-MM-DD"),
    ("date_out_of_range", _enroll(effective_date="1899-01-01"), "DATE_OUT_OF_RANGE",
     "生效日期（effective_date）超出合理的业务日期范围", "effective_date:"),
    ("instant_invalid", _tax(paid_at="2025-01-05T10:00:00"), "INSTANT_INVALID", "缴费时间（paid_at）应为带时区的日期时间",
     "paid_at: must be a date and time with a time zone"),
    ("amount_not_integer_fen", _credit(100.5), "AMOUNT_NOT_INTEGER_FEN", "金额（amount_fen）应为整数分", "amount_fen:"),
    ("amount_not_positive", _credit(0), "AMOUNT_NOT_POSITIVE", "金额（amount_fen）应大于 0 分", "amount_fen:"),
    ("amount_too_large", _credit(10 ** 30), "AMOUNT_TOO_LARGE", "金额（amount_fen）超过政策允许的上限", "amount_fen:"),
    ("date_from_datetime_parsing", ("get", "/transfers", {"params": {"region": HANBIN, "as_of": "昨天"}}),
     "DATE_INVALID", "截至日期（as_of）应为日期", "as_of: must be a calendar date"),
    ("literal_error (query)", ("get", "/arrears.csv", {"params": {"by": "town"}}), "PARAMETER_INVALID",
     "汇总方式（by）只能是以下之一：逐笔（row）、按单位（employer）", "by: must be one of 'row' or 'employer'"),
]


def _send(client, request, headers):
    method, path, kwargs = request
    kwargs = dict(kwargs)
    return getattr(client, method)(path, headers={**CLERK, **headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.mark.parametrize("kind,request_,code,zh,en", CASES, ids=[c[0] for c in CASES])
def test_each_error_type_is_chinese_by_default_and_english_on_request(client, kind, request_, code, zh, en):
    r = _send(client, request_, {})
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code
    assert zh in body["message"], body["message"]
    assert not any(raw in r.text for raw in RAW), r.text
    assert en in body["details"]["errors"][0]["message_en"]
    r_en = _send(client, request_, EN)
    assert r_en.status_code == 422 and r_en.json()["code"] == code  # the code never depends on the language
    assert en in r_en.json()["message"], r_en.json()["message"]
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in r_en.json()["message"].split(":", 1)[0])


def test_several_problems_are_counted_in_chinese_and_english(client):
    body = enrollment(number(2))
    del body["name"], body["scheme"]
    r = client.post("/enrollments", json=body, headers=CLERK)
    assert r.json()["message"] == "缺少必填项：姓名（name）（另有 1 处问题）"
    assert [e["field"] for e in r.json()["details"]["errors"]] == ["name", "scheme"]
    r = client.post("/enrollments", json=body, headers={**CLERK, **EN})
    assert r.json()["message"] == "name: is required (and 1 more problem)"


@pytest.mark.parametrize("method,path,code,zh,en", [
    ("get", "/no/such/route", "NOT_FOUND", "没有此地址 /no/such/route", "there is no route /no/such/route"),
    ("delete", "/enrollments", "METHOD_NOT_ALLOWED", "此地址不接受 DELETE 请求", "this route does not take DELETE"),
])
def test_routing_errors_are_chinese_by_default(client, method, path, code, zh, en):
    r = getattr(client, method)(path, headers=CLERK)
    assert (r.json()["code"], r.json()["message"].startswith(zh), r.json()["details"]["message_en"].startswith(en)) == \
        (code, True, True)
    r = getattr(client, method)(path, headers={**CLERK, **EN})
    assert r.json()["code"] == code and r.json()["message"].startswith(en)


@pytest.mark.parametrize("header,lang", [
    (None, "zh"), ("", "zh"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en", "en"), ("en-US,en;q=0.9", "en"),
    ("EN_gb", "en"), (" en ;q=0.5", "en"), ("fr-FR, en", "zh"), ("english", "zh"), ("eng", "zh"), ("*", "zh"),
    ("en" + "-x" * 50_000, "en"), ("x" * 100_000 + ",en", "zh"), ("\x00en", "zh"), ("en\u00e9", "zh"), (";;;,,,", "zh"),
])
def test_the_first_language_tag_decides_and_anything_odd_is_chinese(header, lang):
    assert lang_of_header(header) == lang


def test_the_catalogue_is_complete_and_bilingual():
    for table in (FIELDS, VALUES, PROBLEMS):
        for key, texts in table.items():
            assert set(texts) == {"zh", "en"} and all(texts.values()), key
    assert set(ERROR_CODES) <= set(PROBLEMS)  # every custom type of the models has its sentence
    for key, texts in PROBLEMS.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in texts["zh"]), key
