"""Sans-IO wire codecs shared by the traders and the venue: REST, WebSocket v2, FIX 4.4."""
