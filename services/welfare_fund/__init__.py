"""Welfare fund context: redistribution policy, accruals, disbursements. Built by issue #6."""
