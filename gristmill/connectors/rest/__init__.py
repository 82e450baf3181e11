"""REST APIs declared in YAML: auth, pagination, retries and rate limits, read with httpx."""
