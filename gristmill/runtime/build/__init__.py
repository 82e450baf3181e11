"""Building one asset inside its transaction: the model kinds' statements, the audit (checks,
metrics, anomalies), quarantine of failing rows and model hooks."""
