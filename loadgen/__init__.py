"""loadgen: a load generator and rate-limit tester for venues speaking Kraken's Spot APIs."""

__version__ = "0.1.0"
