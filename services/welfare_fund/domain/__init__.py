"""Welfare fund domain: pure Python, no I/O."""

from services.welfare_fund.domain.beneficiary import Beneficiary, check_month
from services.welfare_fund.domain.disbursement import (
    Disbursement,
    DisbursementKind,
    DisbursementStatus,
    disbursement_id_for,
)
from services.welfare_fund.domain.errors import (
    ApprovalNotAllowed,
    InsufficientFunds,
    PaymentByApprover,
    PaymentExceedsApproval,
    VersionExists,
)
from services.welfare_fund.domain.fund import FUND_ID, IncomeSource, WelfareFund, accrual_postings
from services.welfare_fund.domain.policy import (
    DEFAULT_ACCOUNT_STREAMS,
    DEFAULT_PROGRAMS,
    PolicyVersion,
    Program,
    ProgramCatalog,
    StipendRules,
    Stream,
    Support,
    accrue,
    accrued_total,
    allocate,
    format_percent,
    parse_percent,
)
from services.welfare_fund.domain.privacy import (
    BENEFICIARY_REF,
    BENEFICIARY_WITHHELD,
    concerns_a_beneficiary,
    holds_beneficiary_rows,
    names_a_beneficiary,
)

__all__ = [
    "BENEFICIARY_REF",
    "BENEFICIARY_WITHHELD",
    "DEFAULT_ACCOUNT_STREAMS",
    "DEFAULT_PROGRAMS",
    "FUND_ID",
    "ApprovalNotAllowed",
    "Beneficiary",
    "Disbursement",
    "DisbursementKind",
    "DisbursementStatus",
    "IncomeSource",
    "InsufficientFunds",
    "PaymentByApprover",
    "PaymentExceedsApproval",
    "PolicyVersion",
    "Program",
    "ProgramCatalog",
    "StipendRules",
    "Stream",
    "Support",
    "VersionExists",
    "WelfareFund",
    "accrual_postings",
    "accrue",
    "accrued_total",
    "allocate",
    "check_month",
    "concerns_a_beneficiary",
    "disbursement_id_for",
    "format_percent",
    "holds_beneficiary_rows",
    "names_a_beneficiary",
    "parse_percent",
]
