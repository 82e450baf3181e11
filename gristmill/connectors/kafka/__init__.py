"""Apache Kafka topics, read with confluent-kafka (librdkafka): a consumer-group ``Feed`` for
streaming runs, and a batch ``Source`` that lands a topic up to its current end."""
