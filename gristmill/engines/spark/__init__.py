"""Apache Spark as the engine: local, standalone cluster and Spark Connect."""
