"""Vivenu's historical charity-ticket sync (seed 002) without Dagster: tickets, the rate limiter, the sender, the
delivery ledger and the pull files."""
