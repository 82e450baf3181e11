"""PostgreSQL change data capture: logical replication (pgoutput) peeked from a slot, as Arrow batches."""
