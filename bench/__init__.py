"""Benchmarks, run on demand (never in the test suite). See docs/benchmarks.md."""
