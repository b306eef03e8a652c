"""Benchmarks: `make bench` (bench.py), `make bench-cache` (semantic_cache.py), asgi_servers.py."""
