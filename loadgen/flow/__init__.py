"""The order-flow model: what each trader does next, learned from what the venue answered."""
