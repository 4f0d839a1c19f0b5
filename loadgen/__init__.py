"""loadgen: a load generator and rate-limit tester for venues speaking Kraken's Spot APIs."""

from loadgen import native

__version__ = "0.1.0"

native.choose()  # compiled modules, or their sources (loadgen/native.py says when and why)
