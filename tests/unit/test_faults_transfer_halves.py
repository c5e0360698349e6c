"""The fault suite's transfer halves (tests/faults/transfers.py) are real `ledger clerk` command lines."""
from __future__ import annotations

from entrypoints.cli import build_parser
from entrypoints.simulation import timeline as feeds, generate_county
from tests.faults.transfers import TransferHalves


def test_every_transfer_half_of_the_county_is_a_clerk_command_line_with_its_request_id():
    county = generate_county(20251122, 300)
    halves = [a for a in county.actions if a.kind in (feeds.TRANSFER_OUT, feeds.TRANSFER_IN)]
    assert {a.kind for a in halves} == {feeds.TRANSFER_OUT, feeds.TRANSFER_IN}
    for action in halves:
        argv = TransferHalves.argv(action.kind, action.record)
        assert argv[1:3] == ["-m", "entrypoints.cli"]
        args = build_parser().parse_args(argv[3:])
        record = action.record
        assert args.command.name == action.kind  # transfer_out / transfer_in: the API's own command
        assert (args.request_id, args.transfer_id, args.id_number) == \
            (record.request_id, record.transfer_id, record.id_number)
        assert args.counterpart_region == record.counterpart_region
        assert args.effective_date == record.effective_date.isoformat()
        if action.kind == feeds.TRANSFER_IN:
            assert (args.region_code, args.account_balance_fen, args.contribution_months) == \
                (record.region_code, str(record.account_balance_fen), str(record.contribution_months))
