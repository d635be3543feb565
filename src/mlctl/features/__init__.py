"""Feature store: offline point-in-time retrieval (online store and materialization later)."""
