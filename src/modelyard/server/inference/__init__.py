"""The model server's HTTP layer: Open Inference Protocol, plain JSON, /metrics."""
