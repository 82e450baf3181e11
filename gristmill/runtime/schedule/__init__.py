"""The scheduler: due ticks from cron schedules, each run once, in child processes."""
