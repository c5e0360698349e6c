"""Synthetic data with a known truth: an Ankang-like county to drive the ledger end to end.

>>> county = generate_county(seed=7, people=3000)
>>> summary = county.apply_to(ledger)          # replays every feed through the Ledger
>>> county.truth.reasons()                     # expected gap reasons, per person
>>> write_csv(county, "out/")                  # the files integrators hand over

See :mod:`entrypoints.simulation.county` (people, timeline, truth rules) and
:mod:`entrypoints.simulation.timeline` (timeline items, replay, CSV).
"""
from entrypoints.simulation.county import (
    DUPLICATE_ENROLLMENT,
    ENROLLED_UNPAID,
    GAP_REASONS,
    IN_COUNTY,
    IN_WAITING_PERIOD,
    LAPSED,
    NOT_ENROLLED,
    SUBSIDISED_NOT_COVERED,
    TRANSFER_INCOMPLETE,
    AreaTruth,
    County,
    CountyProfile,
    CountyTruth,
    PersonTruth,
    SimPerson,
    expected_outcome,
    generate_county,
)
from entrypoints.simulation.timeline import (
    Action,
    ApplySummary,
    Assessment,
    Enrollment,
    ExpectedError,
    MalformedRow,
    RecordError,
    TransferIn,
    TransferOut,
    write_csv,
)

__all__ = [
    "Action",
    "ApplySummary",
    "AreaTruth",
    "Assessment",
    "County",
    "CountyProfile",
    "CountyTruth",
    "DUPLICATE_ENROLLMENT",
    "ENROLLED_UNPAID",
    "Enrollment",
    "ExpectedError",
    "GAP_REASONS",
    "IN_COUNTY",
    "IN_WAITING_PERIOD",
    "LAPSED",
    "MalformedRow",
    "NOT_ENROLLED",
    "PersonTruth",
    "RecordError",
    "SUBSIDISED_NOT_COVERED",
    "SimPerson",
    "TRANSFER_INCOMPLETE",
    "TransferIn",
    "TransferOut",
    "expected_outcome",
    "generate_county",
    "write_csv",
]
