"""Following submitted arrays: the poll cycle, report collection, state roll-up, scheduled jobs."""
