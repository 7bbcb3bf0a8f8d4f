"""Test infrastructure: throwaway PostgreSQL databases, an S3-compatible server, free ports.

The fixtures in ``tests/conftest.py`` are built on these modules; other test helpers
may import them too (``from infra.ports import free_port``).
"""
