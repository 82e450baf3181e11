"""MongoDB collections through pymongo, streamed in batches as Arrow, incremental on a field."""
