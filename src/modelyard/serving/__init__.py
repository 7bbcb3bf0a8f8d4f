"""Serving: put a model package behind an HTTP endpoint (Open Inference Protocol and
plain JSON, adaptive micro-batching, Prometheus metrics, zero-downtime reload) or
run it over a large table in bounded memory (batch prediction, local or on Ray)."""
