"""Metric providers (I/O): the serving pods' own /metrics, or a Prometheus server. The arithmetic on what they return
is pure and lives in driftline.decide.measure."""
