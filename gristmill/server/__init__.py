"""The HTTP layer: metrics and webhooks now, a data API and a UI later.

The app is handed callables (a metrics snapshot, a webhook handler) rather than a project,
so it can be built and tested without one on disk.
"""
