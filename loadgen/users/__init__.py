"""Locust user classes: the traders, built on clients + flow + outcomes."""
