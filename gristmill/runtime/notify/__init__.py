"""Telling the outside world about runs: alerts (webhooks, email) and OpenLineage events."""
