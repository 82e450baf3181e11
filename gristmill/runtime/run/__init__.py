"""Running a plan: the run loop (executor), what one step does, the runner that orders and retries
steps, shared commits, the run lock, run events and step logs, and check runs of published tables."""
