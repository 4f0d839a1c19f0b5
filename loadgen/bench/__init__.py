"""Benchmarks (`loadgen bench ...`)."""
