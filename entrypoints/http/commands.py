"""Clerk commands (医保经办): what each one does, shared by the HTTP routes and ``ledger clerk``.

A :class:`Command` names its request body (a model of :mod:`entrypoints.http.models`, so the
API and the command line refuse the same input with the same codes), whether it acts on
a person already known (``id_type`` / ``id_number`` from the URL or ``--id-number``), and
its ``plan``: which person it writes, which region it belongs to, and the ledger call.

:func:`carry_out` is the one path both surfaces take: the clerk's region is checked,
then a resend of the same request id is recognised, then the ledger call runs.

**Resends.** A clerk retrying a command (a timeout, a double click) sends the same request
id (``X-Request-ID``, or ``--request-id``): the ledger finds the events that request id
already produced for the person and answers ``applied: false`` instead of doing it
twice. The same request id with a different command or body is refused
(``REQUEST_ID_REUSED``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from ledger.application import Outcome
from ledger.domain.chain import content_digest
from ledger.domain.errors import Conflict, DomainError, NotFound
from ledger.domain.person import Person, voucher_key
from entrypoints.http.access import acting_region
from entrypoints.http.auth import Principal, Role
from entrypoints.http.models import (
    AccountEntryIn,
    EmployeeAssessmentIn,
    EndEnrollmentIn,
    EnrollmentIn,
    PaymentCorrectionIn,
    ResidentAssessmentIn,
    StatusGrantIn,
    StatusRevokeIn,
    TransferCancelIn,
    TransferInIn,
    TransferRequestIn,
    TransferOutIn,
)
from ledger.log import get_logger
from ledger.maker_checker import MakerChecker, outcome_of
from ledger.inbound_records import Provenance, StatusRecord, TaxPaymentRecord, clerk_status_record_id

log = get_logger("entrypoints.http.commands")

#: What a plan gives: the person written, the region the command belongs to, the ledger call.
Plan = tuple[UUID, "str | None", Callable[[Provenance], Outcome]]


@dataclass(frozen=True)
class Command:
    """One clerk command: its name, its body, and how it is carried out."""

    name: str  # also the CLI's subcommand, with "-" for "_"
    body: type[BaseModel]
    on_person: bool  # acts on a registered person named by id_type / id_number
    plan: Callable[[Any, Any, "Person | None"], Plan]
    summary: str

    @property
    def cli_name(self) -> str:
        return self.name.replace("_", "-")


def require_clerk(who: Principal) -> Principal:
    """``who``, if a clerk (``ROLE_FORBIDDEN`` otherwise): the first check of every clerk command and of an import."""
    who.require_role(Role.CLERK, action="issue ledger commands")
    return who


def request_key(command: str, identity: tuple[str, str], body: BaseModel) -> str:
    """A digest of what was asked, kept in the events' provenance to tell a resend from a reused request id."""
    digest = content_digest({"command": command, "identity": list(identity), "body": body.model_dump(mode="json")})
    return f"api:{command}:{digest[:32]}"


def earlier_outcome(ledger: Any, person_id: UUID, prov: Provenance) -> Outcome | None:
    """The outcome of this request id's first delivery, if its events are already recorded."""
    try:
        events = list(ledger.events.get(person_id))
    except Exception:  # pragma: no cover - a read failure is not a reason to refuse the command
        return None
    mine = [e for e in events if getattr(e, "provenance", {}).get("request_id") == prov.request_id
            and e.provenance.get("user") == prov.user and e.provenance.get("source") == prov.source]
    if not mine:
        return None
    if any(e.provenance.get("record_key") != prov.record_key for e in mine):
        raise Conflict(
            "REQUEST_ID_REUSED",
            f"request id {prov.request_id} was already used for another command or body; use a new request id",
            request_id=prov.request_id,
        )
    when = mine[0].timestamp.isoformat(timespec="seconds")
    return Outcome(person_id, False, f"request {prov.request_id} was already applied at {when}; nothing changed",
                   [str(e.event_id) for e in mine])


def carry_out(
    ledger: Any,
    who: Principal,
    command: Command,
    body: BaseModel,
    *,
    provenance: Callable[[str], Provenance],
    request_id_given: bool,
    id_type: str | None = None,
    id_number: str | None = None,
) -> Outcome:
    """Check the clerk's region, recognise a resend, run the command; the :class:`Outcome`.

    ``who`` has passed :func:`require_clerk` (the API's ``clerk`` dependency, the CLI's token check).

    ``provenance(record_key)`` gives the events' provenance (source, user, request id);
    a resend is looked for only when the caller chose the request id
    (``request_id_given``): a generated one cannot have been used before.
    Raises :class:`DomainError` (``NotFound`` for an unknown person, ``Forbidden`` for a
    region that is not the clerk's, a rule's own code) with nothing written.
    """
    if command.on_person:
        if id_type is None or id_number is None:
            raise DomainError("PERSON_REQUIRED", f"{command.cli_name} acts on a registered person: give the "
                                                 "ID type and number")
        person = ledger.find_person(id_type, id_number)
        identity = (id_type, id_number)
    else:
        person = None
        identity = (body.id_type, body.id_number)  # type: ignore[attr-defined]
    person_id, region, run = command.plan(ledger, body, person)
    who.require_region(region)
    prov = provenance(request_key(command.name, identity, body))
    outcome = earlier_outcome(ledger, person_id, prov) if request_id_given else None
    if outcome is None:
        try:
            outcome = run(prov)
        except Conflict:
            # A resend that raced its first delivery finds that delivery's events now.
            outcome = earlier_outcome(ledger, person_id, prov) if request_id_given else None
            if outcome is None:
                raise
    log.info("command", command=command.name, source=prov.source, person_id=str(person_id), region=region,
             applied=outcome.applied, events=len(outcome.event_ids))
    return outcome


# ---------------------------------------------------------------------------- the commands
def _enroll(ledger: Any, body: EnrollmentIn, _: Person | None) -> Plan:
    return ledger.person_id(body.id_type, body.id_number), body.region_code, lambda prov: ledger.enroll(
        id_type=body.id_type, id_number=body.id_number, name=body.name, scheme=body.scheme,
        region_code=body.region_code, grid_code=body.grid_code, flexible=body.flexible,
        employer_id=body.employer_id, channel="COUNTER", effective_date=body.effective_date, provenance=prov)


def _transfer_in(ledger: Any, body: TransferInIn, _: Person | None) -> Plan:
    return ledger.person_id(body.id_type, body.id_number), body.region_code, lambda prov: ledger.transfer_in(
        id_type=body.id_type, id_number=body.id_number, name=body.name, transfer_id=body.transfer_id,
        counterpart_region=body.counterpart_region, account_balance_fen=body.account_balance_fen,
        contribution_months=body.contribution_months, source_document_no=body.source_document_no,
        scheme=body.scheme, region_code=body.region_code,
        grid_code=body.grid_code, flexible=body.flexible, employer_id=body.employer_id,
        effective_date=body.effective_date, provenance=prov)


def _assess_resident_year(ledger: Any, body: ResidentAssessmentIn, person: Person) -> Plan:
    return person.id, acting_region(person), lambda prov: ledger.assess_resident_year(
        person.id, body.year, provenance=prov, effective_date=body.effective_date)


def _assess_employee_month(ledger: Any, body: EmployeeAssessmentIn, person: Person) -> Plan:
    return person.id, acting_region(person), lambda prov: ledger.assess_employee_month(
        person.id, body.month, declared_base_fen=body.declared_base_fen, provenance=prov,
        effective_date=body.effective_date)


def _correct_payment(ledger: Any, body: PaymentCorrectionIn, person: Person) -> Plan:
    original_office = body.original_tax_office or body.tax_office
    original = person.payments.get(voucher_key(original_office, body.original_voucher_no))
    if original is None:
        raise DomainError(
            f"{body.kind}_UNKNOWN_VOUCHER",
            f"the original voucher {body.original_voucher_no} (office {original_office}) is not recorded for this person",
            voucher_no=body.original_voucher_no,
        )
    record = TaxPaymentRecord(
        voucher_no=body.voucher_no, tax_office=body.tax_office, id_type=person.id_type, id_number=person.id_number,
        name=person.name, region_code=original.region_code, levy_item=original.levy_item,
        period_start=original.period_start, period_end=original.period_end, amount_fen=body.amount_fen,
        paid_at=body.corrected_at or datetime.now(timezone.utc), channel="COUNTER", kind=body.kind,
        original_voucher_no=body.original_voucher_no, original_tax_office=original_office, reason=body.reason,
    )
    checker = MakerChecker(ledger)
    if checker.correction_needs_approval(original.region_code, body.amount_fen):
        # Above the policy's threshold ([approval] correction_threshold_fen) a second clerk approves it first.
        return person.id, original.region_code, lambda prov: outcome_of(checker.propose_payment_correction(
            record, region_code=original.region_code, provenance=prov))
    return person.id, original.region_code, lambda prov: ledger.record_tax_record(record, provenance=prov)


def _transfer_out(ledger: Any, body: TransferOutIn, person: Person) -> Plan:
    return person.id, acting_region(person), lambda prov: ledger.transfer_out(
        person.id, transfer_id=body.transfer_id, counterpart_region=body.counterpart_region,
        effective_date=body.effective_date, provenance=prov)


def _request_transfer(ledger: Any, body: TransferRequestIn, person: Person) -> Plan:
    return person.id, body.region_code, lambda prov: ledger.request_transfer(
        person.id, transfer_id=body.transfer_id, sending_region=body.counterpart_region,
        receiving_region=body.region_code, effective_date=body.effective_date, provenance=prov)


def _cancel_transfer(ledger: Any, body: TransferCancelIn, person: Person) -> Plan:
    transfer = person.transfers.get(body.transfer_id)
    if transfer is None or transfer.direction == "IN":
        raise DomainError("TRANSFER_UNKNOWN", f"本人没有转移单 {body.transfer_id} 的转出 (no transfer-out "
                                              f"{body.transfer_id} for this person)", transfer_id=body.transfer_id)
    # The sending region cancels its own half; the receiving region rejects what was sent to it.
    region = transfer.counterpart_region if body.rejected else transfer.region_code
    return person.id, region, lambda prov: ledger.cancel_transfer(
        person.id, transfer_id=body.transfer_id, reason=body.reason, effective_date=body.effective_date,
        provenance=prov, rejected=body.rejected)


def _end_enrollment(ledger: Any, body: EndEnrollmentIn, person: Person) -> Plan:
    """Ending an enrollment waits for a second clerk (maker-checker): the command proposes the change."""
    region = person.enrollment(body.enrollment_id).region_code if body.enrollment_id else acting_region(person)
    return person.id, region, lambda prov: outcome_of(MakerChecker(ledger).propose_end_enrollment(
        person_id=person.id, enrollment_id=body.enrollment_id, reason=body.reason,
        effective_date=body.effective_date, region_code=str(region), provenance=prov))


def _credit_account(ledger: Any, body: AccountEntryIn, person: Person) -> Plan:
    return person.id, acting_region(person), lambda prov: ledger.credit_account(
        person.id, amount_fen=body.amount_fen, reason=body.reason, reference=body.reference,
        effective_date=body.effective_date, provenance=prov)


def _debit_account(ledger: Any, body: AccountEntryIn, person: Person) -> Plan:
    region = acting_region(person)
    checker = MakerChecker(ledger)
    if region is not None and checker.correction_needs_approval(region, body.amount_fen):
        # Above the policy's threshold ([approval] correction_threshold_fen) a second clerk approves it first.
        return person.id, region, lambda prov: outcome_of(checker.propose_account_debit(
            person_id=person.id, amount_fen=body.amount_fen, reason=body.reason, reference=body.reference,
            effective_date=body.effective_date, relative_person_id=body.relative_person_id,
            relative_relationship=body.relative_relationship, region_code=region, provenance=prov))
    return person.id, region, lambda prov: ledger.debit_account(
        person.id, amount_fen=body.amount_fen, reason=body.reason, reference=body.reference,
        effective_date=body.effective_date, provenance=prov, relative_person_id=body.relative_person_id,
        relative_relationship=body.relative_relationship)


def clerk_status_key(person_id: UUID, document_no: str, *, revokes: str | None = None) -> str:
    """The record key of a clerk-entered status (:func:`ledger.inbound_records.clerk_status_record_id`)."""
    return clerk_status_record_id(person_id, document_no, revokes=revokes)


def _known(ledger: Any, person_id: UUID) -> Person | None:
    try:
        return ledger.get_person(person_id)
    except NotFound:
        return None


def _check_status_region(person_region: str | None, given: str | None) -> None:
    """A status is entered by the clerks of the person's region; a region given must be that one."""
    if person_region is not None and given is not None and given != person_region:
        raise DomainError("STATUS_REGION_MISMATCH",
                          f"该参保人的参保地（或居住地）是 {person_region}，不是 {given}：请按其参保地填写 region_code "
                          f"(the person belongs to region {person_region}, not {given})",
                          region_code=given, person_region=person_region)


def _grant_status(ledger: Any, body: StatusGrantIn, _: Person | None) -> Plan:
    person_id = ledger.person_id(body.id_type, body.id_number)
    known = _known(ledger, person_id)
    person_region = acting_region(known) if known is not None else None
    record = StatusRecord(
        record_id=clerk_status_key(person_id, body.document_no), id_type=body.id_type, id_number=body.id_number,
        name=body.name, category=body.category, granted=True, valid_from=body.valid_from, valid_to=body.valid_to,
        department=body.department, document_no=body.document_no)

    def run(prov: Provenance) -> Outcome:
        _check_status_region(person_region, body.region_code)
        return ledger.apply_status(record, provenance=prov)  # the feed's own command: one rule for both

    return person_id, person_region or body.region_code, run


def _revoke_status(ledger: Any, body: StatusRevokeIn, person: Person) -> Plan:
    person_region = acting_region(person)
    record = StatusRecord(
        record_id=clerk_status_key(person.id, body.document_no, revokes=body.grant_id), id_type=person.id_type,
        id_number=person.id_number, name=person.name, category=getattr(person.subsidies.get(body.grant_id), "category", ""),
        granted=False, valid_from=body.revoked_from, valid_to=None, department=body.department,
        document_no=body.document_no, grant_id=body.grant_id)

    def run(prov: Provenance) -> Outcome:
        _check_status_region(person_region, body.region_code)
        if body.grant_id not in person.subsidies:
            raise DomainError("GRANT_UNKNOWN", f"本人没有认定文书编号为 {body.grant_id} 的资助身份，无法取消 "
                                               f"(no subsidised status {body.grant_id!r} to revoke for this person)",
                              grant_id=body.grant_id)
        return ledger.apply_status(record, provenance=prov)

    return person.id, person_region or body.region_code, run


ENROLL = Command("enroll", EnrollmentIn, False, _enroll, "register (if new) and enroll a person (参保登记)")
TRANSFER_IN = Command("transfer_in", TransferInIn, False, _transfer_in,
                      "transfer a person in from another region (医保关系转入)")
ASSESS_RESIDENT_YEAR = Command("assess_resident_year", ResidentAssessmentIn, True, _assess_resident_year,
                               "assess a resident coverage year (城乡居民缴费核定)")
ASSESS_EMPLOYEE_MONTH = Command("assess_employee_month", EmployeeAssessmentIn, True, _assess_employee_month,
                                "assess an employee-scheme month (职工缴费核定)")
PAYMENT_CORRECTION = Command("payment_correction", PaymentCorrectionIn, True, _correct_payment,
                             "record a counter refund or reversal of a payment (窗口退费/冲正)")
TRANSFER_OUT = Command("transfer_out", TransferOutIn, True, _transfer_out,
                       "transfer a person out to another region (医保关系转出)")
TRANSFER_REQUEST = Command("transfer_request", TransferRequestIn, True, _request_transfer,
                           "record a transfer request at the receiving region (转移接续申请)")
TRANSFER_CANCEL = Command("transfer_cancel", TransferCancelIn, True, _cancel_transfer,
                          "cancel (sending region) or reject (receiving region) an open transfer (转移撤销/拒绝)")
END_ENROLLMENT = Command("end_enrollment", EndEnrollmentIn, True, _end_enrollment, "end an enrollment (终止参保)")
ACCOUNT_CREDIT = Command("account_credit", AccountEntryIn, True, _credit_account,
                         "credit the personal account (个人账户划入)")
ACCOUNT_DEBIT = Command("account_debit", AccountEntryIn, True, _debit_account,
                        "debit the personal account (个人账户支出, 家庭共济)")

GRANT_STATUS = Command("grant_status", StatusGrantIn, False, _grant_status,
                       "grant a subsidised-group status from its certificate (资助参保身份认定录入)")
REVOKE_STATUS = Command("revoke_status", StatusRevokeIn, True, _revoke_status,
                        "revoke a subsidised-group status from a date (资助参保身份取消)")

COMMANDS: tuple[Command, ...] = (ENROLL, TRANSFER_IN, ASSESS_RESIDENT_YEAR, ASSESS_EMPLOYEE_MONTH, PAYMENT_CORRECTION,
                                 TRANSFER_REQUEST, TRANSFER_OUT, TRANSFER_CANCEL, END_ENROLLMENT, ACCOUNT_CREDIT, ACCOUNT_DEBIT,
                                 GRANT_STATUS, REVOKE_STATUS)

__all__ = ["COMMANDS", "Command", "carry_out", "clerk_status_key", "earlier_outcome", "request_key", "require_clerk"]
