"""Outcomes -> HDR histograms per (protocol, op, outcome) per second; merged; written to results/."""
