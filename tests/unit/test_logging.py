"""Every log line is masked: no ID number reaches a log in clear (个人信息保护法)."""
from __future__ import annotations

import json

import structlog

from ledger.log import configure_logging, mask_id_number, mask_personal_data, mask_text

RESIDENT = "11010519491231002X"
OTHER = "440524188001010014"


def test_mask_keeps_only_the_ends():
    assert mask_id_number(RESIDENT) == "1101**********002X"


def test_processor_masks_nested_values_and_sensitive_keys():
    event = {
        "event": f"payment for {RESIDENT} recorded",
        "person": {"id_number": "E12345678", "names": [f"id={OTHER}"]},
        "id_number": "short1",
        "grid": "610902100001",  # a 12-digit grid code is not an ID number
        "amount_fen": 40000,
    }
    out = mask_personal_data(None, "info", event)
    text = json.dumps(out, ensure_ascii=False)
    assert RESIDENT not in text and OTHER not in text and "E12345678" not in text and "short1" not in text
    assert out["grid"] == "610902100001" and out["amount_fen"] == 40000
    assert "1101**********002X" in out["event"]


def test_other_id_types_in_free_text_are_masked():
    for number in ("E12345678", "H1234567890", "ABC123456789012"):
        assert number not in mask_text(f"holder {number} paid")


def test_configured_json_logging_masks_every_line(capsys):
    configure_logging(json=True, force=True)
    log = structlog.get_logger("t")
    log.info("registered", id_number=RESIDENT, note=f"from {OTHER}")
    try:
        raise ValueError(f"bad row for {RESIDENT}")
    except ValueError:
        log.exception("row_failed")
    err = capsys.readouterr().err
    assert RESIDENT not in err and OTHER not in err
    lines = [json.loads(line) for line in err.strip().splitlines()]
    assert lines[0]["event"] == "registered" and lines[0]["id_number"] == "1101**********002X"
    assert "ValueError" in lines[1]["exception"]
    configure_logging(force=True)
