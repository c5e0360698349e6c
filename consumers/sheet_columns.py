"""The registration sheet's columns (批量参保登记表的列): one table, read by the importer, the template and its help.

Each :class:`Column` names its Chinese header, the other headers agencies use for it (synonyms),
whether it must be there, the values it accepts (with their Chinese synonyms) and an example.
``consumers.spreadsheets`` maps a header through :data:`HEADERS`; ``consumers.sheet_workbooks``
writes the template and its 填写说明 sheet from the same :data:`COLUMNS`, so the documentation
is this table.

Columns known to be harmless (序号, 性别, 民族, ...) and any other unknown column are ignored
with a notice rather than refused; a missing required column or a repeated one still stops the
import before anything is written.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

ID_TYPE_VALUES = {
    "居民身份证": "RESIDENT_ID", "身份证": "RESIDENT_ID",
    "护照": "PASSPORT",
    "港澳居民来往内地通行证": "HK_MACAU_PERMIT", "港澳居民居住证": "HK_MACAU_PERMIT",
    "台湾居民来往大陆通行证": "TAIWAN_PERMIT", "台湾居民居住证": "TAIWAN_PERMIT",
    "外国人永久居留身份证": "FOREIGN_PERMANENT_RESIDENT",
}
SCHEME_VALUES = {
    "城乡居民": "RESIDENT", "居民": "RESIDENT", "居民医保": "RESIDENT", "城乡居民医保": "RESIDENT",
    "城乡居民基本医疗保险": "RESIDENT", "城乡居民医疗保险": "RESIDENT",
    "职工": "EMPLOYEE", "职工医保": "EMPLOYEE", "职工基本医疗保险": "EMPLOYEE", "城镇职工": "EMPLOYEE",
}
CATEGORY_VALUES = {
    "特困人员": "EXTREME_POVERTY", "特困": "EXTREME_POVERTY", "孤儿": "ORPHAN",
    "事实无人抚养儿童": "DE_FACTO_ORPHAN", "低保对象": "MIN_LIVING", "低保": "MIN_LIVING",
    "返贫致贫人口": "RELAPSED_POVERTY", "防止返贫监测对象": "MONITORED", "监测对象": "MONITORED",
    "低保边缘": "LOW_INCOME_MARGINAL",
}
FLEXIBLE_VALUES = {"是": "Y", "否": "N"}


@dataclass(frozen=True)
class Column:
    """One column of the registration sheet."""

    name: str  # the field it fills (English, as in the API)
    header: str  # the Chinese header the template writes
    required: bool
    accepted: str  # what to write, in Chinese, for 填写说明
    example: str = ""  # the template's example row
    synonyms: tuple[str, ...] = ()  # other headers that mean this column
    values: Mapping[str, str] = field(default_factory=dict)  # value synonyms -> code
    note: str = ""  # when it is required after all, how it defaults


COLUMNS: tuple[Column, ...] = (
    Column("id_type", "证件类型", False, "居民身份证（默认）、护照、港澳居民来往内地通行证、台湾居民来往大陆通行证、"
           "外国人永久居留身份证，或其代码 RESIDENT_ID、PASSPORT ……", "居民身份证",
           ("证件种类", "身份证件类型"), ID_TYPE_VALUES, "空白即居民身份证"),
    Column("id_number", "证件号码", True, "证件上的号码；请把该列设为“文本”格式，数字格式会让 Excel 改掉末几位",
           "610902199001010128", ("身份证号码", "身份证号", "公民身份号码", "身份证件号码", "证件号", "社会保障号码")),
    Column("name", "姓名", True, "证件上的姓名", "张三", ("参保人姓名", "人员姓名", "参保人")),
    Column("scheme", "险种", True, "城乡居民 / 职工（或 RESIDENT / EMPLOYEE）", "城乡居民",
           ("参保类别", "参保险种", "险种类型", "参保类型"), SCHEME_VALUES),
    # Not required in the header: a clerk of one region leaves it out (the row is refused when it cannot be told).
    Column("region_code", "参保地", False, "6 位行政区划代码（县级），如 610902", "610902",
           ("所属区县", "参保地区划代码", "行政区划代码", "区县代码", "参保地代码"),
           note="留空时取导入人唯一的参保地，再取网格代码前 6 位；都无法确定则该行报错"),
    Column("township", "所属乡镇", False, "乡镇（街道）名称，如 关庙镇（“关庙”“关庙镇人民政府”亦可），或 9 位乡镇代码；"
           "按参保日期当天有效的地名、在参保地区县内查找", "关庙镇",
           ("乡镇", "所属乡镇（街道）", "乡镇（街道）", "所属街道", "乡镇代码")),
    Column("grid_code", "所属村（社区）", False, "村（社区）名称，如 关庙社区（“关庙社区居委会”亦可），须在所属乡镇之下；"
           "或 12 位村（社区）代码（统计用区划代码）", "关庙社区",
           ("网格", "网格代码", "网格码", "村（社区）", "所属村", "所属社区", "村社区代码", "村（社区）代码")),
    Column("phone", "联系电话", False, "11 位手机号码，或带区号的固定电话（如 0915-3212345）；加密保存，不导出", "13800000000",
           ("手机号码", "手机号", "手机", "电话", "联系方式", "电话号码")),
    Column("flexible", "灵活就业", False, "是 / 否（Y/N、1/0），空白即否", "否", ("是否灵活就业",), FLEXIBLE_VALUES),
    Column("employer_id", "单位编号", False, "参加职工医保且非灵活就业时填写", "", ("单位编码", "单位代码", "参保单位编号"),
           note="职工医保且非灵活就业时必填"),
    Column("effective_date", "参保日期", True, "YYYY-MM-DD（也可 YYYY/MM/DD、YYYYMMDD 或 Excel 日期）", "2024-09-10",
           ("参保时间", "参保开始日期", "登记日期")),
    # A subsidised status from its certificate (资助参保身份), entered with the registration: the
    # civil-affairs feed's own command, keyed by the certificate number.
    Column("status_category", "资助身份", False, "特困人员、孤儿、事实无人抚养儿童、低保对象、返贫致贫人口、"
           "防止返贫监测对象、低保边缘（或其代码）", "", ("资助类别", "资助参保类别", "特殊人员类别"), CATEGORY_VALUES,
           "填写后须同时填写认定起始日期、认定部门、认定文书编号"),
    Column("status_valid_from", "认定起始日期", False, "日期，写法同参保日期", "", ("认定开始日期", "认定日期"),
           note="填写资助身份时必填"),
    Column("status_valid_to", "认定终止日期", False, "日期；空白即长期有效", "", ("认定结束日期",)),
    Column("status_department", "认定部门", False, "出具认定的部门", "", ("认定单位",), note="填写资助身份时必填"),
    Column("status_document_no", "认定文书编号", False, "认定文书（证书）编号，同一人同一身份以此为准", "",
           ("认定文号", "证书编号", "认定编号"), note="填写资助身份时必填"),
)

#: Headers agencies keep in their sheets that the ledger does not read: ignored with a notice.
IGNORED_HEADERS = ("序号", "编号", "性别", "民族", "出生日期", "年龄", "家庭住址", "住址",
                   "户籍地址", "户主姓名", "与户主关系", "备注", "经办人", "经办日期",
                   "错误说明")  # the error workbook's own column, when a fixed sheet is sent back

BY_NAME: Mapping[str, Column] = MappingProxyType({c.name: c for c in COLUMNS})
REQUIRED = [c.name for c in COLUMNS if c.required]


def _key(header: str) -> str:
    return header.replace("(", "（").replace(")", "）").replace(" ", "").lower()


#: Every header that names a column (its name, its Chinese header, its synonyms), normalised by :func:`_key`.
HEADERS: Mapping[str, str] = MappingProxyType({
    _key(h): c.name for c in COLUMNS for h in (c.name, c.header, *c.synonyms)
})


def column_of(header: str) -> str | None:
    return HEADERS.get(_key(header))


def label(name: str) -> str:
    """How a message names a column: its Chinese header."""
    return BY_NAME[name].header if name in BY_NAME else name


def is_known_harmless(header: str) -> bool:
    return _key(header) in {_key(h) for h in IGNORED_HEADERS}


def closest(header: str) -> str | None:
    """The column a misspelt header probably meant (``参保日起`` -> 参保日期), for the notice."""
    match = difflib.get_close_matches(_key(header), list(HEADERS), n=1, cutoff=0.6)
    return label(HEADERS[match[0]]) if match else None


def value_of(name: str, text: str) -> str:
    """A cell's value through the column's value synonyms (城乡居民 -> RESIDENT); unknown text as it is."""
    return BY_NAME[name].values.get(text, text)


def expected_columns_text() -> str:
    return "、".join(f"{c.header}{'（必填）' if c.required else ''}" for c in COLUMNS)
