"""The embedded Kraken-compatible venue: engine, accounts, REST/WS/FIX servers, knobs."""
