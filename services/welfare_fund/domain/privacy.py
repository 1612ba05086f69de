"""Which stored events concern one beneficiary.

A beneficiary's events (enrolment, attendance, stipends, erasure), the commitment
that names her, and the idempotency claims of commands on her (their result names
her) are, even pseudonymous, a timeline of a woman the fund protects: the audit
history does not list them and the audit export gives only their digest
(docs/audit.md). The fund's own events (reservations, payments, accruals) carry no
beneficiary and stay fully auditable.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from eventsourcing.utils import get_topic

from services.welfare_fund.domain.beneficiary import Beneficiary
from services.welfare_fund.domain.disbursement import Disbursement

# The result reference a command on one beneficiary keeps in its idempotency claim.
BENEFICIARY_REF = "beneficiary_id"

# What an audit output says in place of what it withholds about a beneficiary.
BENEFICIARY_WITHHELD = "beneficiary"

# Every event of a Beneficiary aggregate has a topic starting so.
BENEFICIARY_EVENT_TOPIC_PREFIX = get_topic(Beneficiary) + "."
_NAMING_A_BENEFICIARY = frozenset({get_topic(Disbursement.Committed)})


def concerns_a_beneficiary(topic: str) -> bool:
    """Whether an event with this stored topic is about one beneficiary."""
    return topic.startswith(BENEFICIARY_EVENT_TOPIC_PREFIX) or topic in _NAMING_A_BENEFICIARY


# Commands whose request names one beneficiary: their claim's request digest is a
# plain SHA-256 of it, so anyone holding her reference and the command's other
# fields (a commitment's kind, month, amount and day, all readable) could confirm
# which claims, and so which disbursements, are hers.
_OPERATIONS_ON_A_BENEFICIARY = frozenset(
    {"enrollBeneficiary", "recordAttendance", "forgetBeneficiary", "commitDisbursement"}
)


def names_a_beneficiary(result_ref: Mapping[str, object]) -> bool:
    """Whether an idempotency claim's result reference is a beneficiary."""
    return BENEFICIARY_REF in result_ref


def is_an_operation_on_a_beneficiary(operation: object) -> bool:
    """Whether an idempotency claim's operation took one beneficiary in its request."""
    return operation in _OPERATIONS_ON_A_BENEFICIARY


def holds_beneficiary_rows(column_names: Collection[str]) -> bool:
    """Whether a read-model table with these columns keeps rows about one beneficiary
    each (her enrolment, attendance, disbursements): what an audit output lists of
    such a row is withheld, as her events are."""
    return BENEFICIARY_REF in column_names
