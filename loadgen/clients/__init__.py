"""gevent transports that turn codec output into traffic: rest, ws, fix (one interface)."""
