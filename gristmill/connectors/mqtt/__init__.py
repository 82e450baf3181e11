"""MQTT topics landed at least once: a persistent session, acknowledged after the lake commits."""
