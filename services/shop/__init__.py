"""Charity shop context: till, sales, returns, cash sessions. Built by issue #4."""
