"""NATS JetStream streams landed exactly once: the stream sequence is the stored position."""
