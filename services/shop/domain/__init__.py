"""Charity shop domain: pure Python, no I/O."""

from services.shop.domain.config import (
    CONFIG_ID,
    CashDirection,
    CashReason,
    Category,
    ShopConfig,
    ShopPolicy,
    ShopPolicyWithdrawal,
    default_policy,
)
from services.shop.domain.errors import (
    NoOpenSession,
    PolicyMovedOn,
    SaleNotFound,
    SessionAlreadyOpen,
    SessionClosed,
    SessionNotFound,
    UnknownCategory,
    WrongTill,
)
from services.shop.domain.intake import GoodsIntake
from services.shop.domain.sale import (
    LineInput,
    PaymentInput,
    PaymentMethod,
    RefundLineInput,
    Sale,
    document_postings,
)
from services.shop.domain.session import (
    CashSession,
    Till,
    check_scope,
    check_till_id,
    till_aggregate_id,
)

__all__ = [
    "CONFIG_ID",
    "CashDirection",
    "CashReason",
    "CashSession",
    "Category",
    "GoodsIntake",
    "LineInput",
    "NoOpenSession",
    "PaymentInput",
    "PaymentMethod",
    "PolicyMovedOn",
    "RefundLineInput",
    "Sale",
    "SaleNotFound",
    "SessionAlreadyOpen",
    "SessionClosed",
    "SessionNotFound",
    "ShopConfig",
    "ShopPolicy",
    "ShopPolicyWithdrawal",
    "Till",
    "UnknownCategory",
    "WrongTill",
    "check_scope",
    "check_till_id",
    "default_policy",
    "document_postings",
    "till_aggregate_id",
]
