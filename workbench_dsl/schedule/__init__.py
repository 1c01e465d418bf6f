"""Recurring runs: the local scheduler (cron, catch-up, idempotent ticks, max concurrency)
and KFP recurring runs through ``kfp.Client``. See ``docs/schedule.md``."""
