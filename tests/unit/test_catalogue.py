"""The one message catalogue (entrypoints/locale/{zh,en}.toml): every text in both languages, every error code
with a Chinese message, and the old modules (messages.py, api_messages.py) reading from it."""
from __future__ import annotations

import argparse

import pytest

from entrypoints import catalogue
from entrypoints import messages
from entrypoints.catalogue import _CJK, LANGS, _load, chinese_first, error_message, placeholders
from entrypoints.http import api_messages
from entrypoints.main import build_parser
from tests.unit.error_codes import raised_codes


#: Sections whose English is the source text written in the code (gettext's way): the option helps.
ZH_ONLY = {"cli_options"}


def test_both_languages_name_the_same_sections_and_keys():
    zh, en = _load("zh"), _load("en")
    assert [s for s in zh if s not in ZH_ONLY] == list(en)
    for section in en:
        assert set(zh[section]) == set(en[section]), (section, set(zh[section]) ^ set(en[section]))
        assert zh[section], section


@pytest.mark.parametrize("section", [s for s in catalogue.sections() if s not in ZH_ONLY])
def test_every_text_is_non_empty_and_both_languages_take_the_same_placeholders(section):
    for key, texts in catalogue.table(section).items():
        assert set(texts) == set(LANGS), (section, key)
        assert all(t.strip() for t in texts.values()), (section, key)
        zh, en = placeholders(texts["zh"]), placeholders(texts["en"])
        if (section, key) != ("api_problems", "string_pattern_mismatch"):  # the caller passes both shape and pattern
            assert zh <= en or en <= zh, (section, key)  # one language may leave out a detail, never invent one


def test_every_option_and_subcommand_of_the_command_line_has_its_chinese_help():
    parser = build_parser(None, "en")
    untranslated = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for c in a._choices_actions:
                    key = f"{path} {c.dest}".strip()
                    if not catalogue.has("cli_commands", key):
                        untranslated.append(key)
                for name, sub in a.choices.items():
                    walk(sub, f"{path} {name}".strip())
            elif a.help and a.help != argparse.SUPPRESS and a.dest not in ("help", "lang", "json"):
                if not catalogue.has("cli_options", f"{path}.{a.dest}"):
                    untranslated.append(f"{path}.{a.dest}")

    walk(parser, "")
    assert untranslated == []
    assert len(catalogue.table("cli_options")) > 150


def test_the_chinese_texts_are_chinese():
    # A key, a code or a shape may stay as it is (``^\\d{6}$``); a sentence must not be left in English.
    english = [(s, k) for s in catalogue.sections() if s not in ZH_ONLY for k, t in catalogue.table(s).items()
               if len(t["zh"]) > 12 and not chinese_first(t["zh"]) and t["zh"] == t["en"]]
    assert english == []


def test_every_error_code_raised_anywhere_has_a_chinese_and_an_english_message():
    codes = raised_codes()
    assert {"PERSON_NOT_FOUND", "ID_CHECKSUM", "TOKEN_MISSING", "SCOPE_FORBIDDEN", "BODY_TOO_LARGE",
            "SERVER_BUSY", "REGION_NOT_IN_SCOPE", "AMOUNT_NOT_INTEGER_FEN"} <= set(codes)  # the scan finds them
    missing = {c: sorted(w) for c, w in codes.items() if not catalogue.has("errors", c)}
    assert missing == {}
    for code in codes:
        zh, en = catalogue.raw("errors", code, "zh"), catalogue.raw("errors", code, "en")
        assert _CJK.search(zh) and zh != en, code


def test_an_english_sentence_raised_with_a_code_gets_the_codes_chinese_sentence_first():
    said = "the check digit of 11010519491231002X should be 7"
    assert error_message("ID_CHECKSUM", said, "zh") == f"证件号码校验位不正确，请核对证件（{said}）"
    assert error_message("ID_CHECKSUM", said, "en") == said


def test_a_chinese_sentence_with_english_in_parentheses_is_split_by_language():
    said = "请求体超过上限 1,024 字节，未处理 (the body is larger than 1,024 bytes; nothing was done)"
    assert error_message("BODY_TOO_LARGE", said, "zh") == "请求体超过上限 1,024 字节，未处理"
    assert error_message("BODY_TOO_LARGE", said, "en") == "the body is larger than 1,024 bytes; nothing was done"


def test_an_english_sentence_with_a_chinese_gloss_is_split_by_language():
    said = "no access to grid 610902100002: your token covers 610902100001 (你没有网格 610902100002 的权限)"
    assert error_message("SCOPE_FORBIDDEN", said, "zh") == "你没有网格 610902100002 的权限"
    assert error_message("SCOPE_FORBIDDEN", said, "en").startswith("no access to grid 610902100002")


def test_a_chinese_only_sentence_gets_the_codes_english_one_and_an_unknown_code_a_generic_one():
    assert error_message("PERSON_NOT_FOUND", "查无此人", "en") == catalogue.raw("errors", "PERSON_NOT_FOUND", "en")
    assert error_message("NOT_A_CODE_X", "something broke", "zh") == "请求未能办理（错误代码 NOT_A_CODE_X）（something broke）"
    assert error_message("NOT_A_CODE_X", "出错", "en") == "the request was refused (error code NOT_A_CODE_X)"


def test_the_old_modules_are_names_over_the_catalogue():
    assert messages.MESSAGES == catalogue.table("demo") and messages.AUDIT == catalogue.table("audit")
    assert messages.text("recon_none", "zh") == "无" and messages.text("recon_none", "en") == "none"
    assert api_messages.PROBLEMS == catalogue.table("api_problems")
    assert api_messages.text("invalid", "zh") == "请求不符合要求"
    assert messages.lang_of("en_US.UTF-8") == "en" and messages.lang_of(None) == "zh"
