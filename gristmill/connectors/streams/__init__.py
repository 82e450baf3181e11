"""What every message-broker source shares: the feed protocol the streaming loop pulls from,
table options (payload format, declared columns) and the decoding of a micro-batch to Arrow."""
