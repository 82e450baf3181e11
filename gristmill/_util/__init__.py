"""Domain-free helpers, one topic per module."""
