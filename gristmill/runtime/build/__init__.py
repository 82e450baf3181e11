"""Building a model's new version: materializing its query, auditing it with its checks, setting
failing rows aside (quarantine) and running its hooks."""
