"""Reports: analysis of results/<run>/ (percentiles, jitter, SLOs, knee, capacity) and renderers."""
