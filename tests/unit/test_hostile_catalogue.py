"""Hostile input against the message catalogue: language headers and flags, and error messages that look like
format strings. Nothing may crash, answer 5xx, or echo more than the language asked for."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from entrypoints.catalogue import _CJK, chinese_first, error_message
from entrypoints.http.errors import install_error_handlers
from ledger.domain.errors import DomainError
from tests.unit.http_support import client, system  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def test_a_huge_or_garbage_accept_language_on_a_refusal_answers_chinese(hostile, client):  # noqa: F811
    for name, header in (("100 kB Accept-Language", "en" + "x" * 100_000), ("garbage Accept-Language", "\x01;;,,q=9"),
                         ("English hidden after Chinese", "zh-CN,en;q=0.9")):
        r = client.get("/persons/RESIDENT_ID/123", headers={"Accept-Language": header})
        hostile.attempt(name, status=r.status_code, leaked="send your token" in r.text)
        assert (r.status_code, r.json()["code"]) == (401, "TOKEN_MISSING") and chinese_first(r.json()["message"])


def test_a_message_that_looks_like_a_format_string_is_shown_as_it_is(hostile):
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise")
    def raise_it(said: str) -> None:
        raise DomainError("ID_FORMAT", said, secret="s3cr3t")

    with TestClient(app) as c:
        for said in ("{secret}", "{0.__class__}", "{__init__.__globals__}", "中文{secret}（{secret}）"):
            for lang in ("zh", "en"):
                r = c.get("/raise", params={"said": said}, headers={"Accept-Language": lang})
                hostile.attempt(f"format string {said!r} in a message ({lang})", status=r.status_code,
                                leaked="s3cr3t" in r.json()["message"])
                assert r.status_code == 422 and "s3cr3t" not in r.json()["message"]
    assert error_message("ID_FORMAT", "{secret}", "zh", {"secret": "s3cr3t"}).endswith("（{secret}）")


def test_a_hostile_lang_flag_is_refused_by_the_parser(hostile):
    for value in ("$(rm -rf /)", "en;drop", "e" * 10_000):
        r = subprocess.run([sys.executable, "-m", "entrypoints.main", "--lang", value, "gaps", "610902100001"],
                           cwd=ROOT, capture_output=True, text=True)
        hostile.attempt(f"--lang {value[:20]!r}", crashed="Traceback" in r.stderr)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "--lang" in r.stderr
    assert not _CJK.search(error_message("ID_FORMAT", "said in English", "en"))
