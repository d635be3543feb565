"""The engine: apply a Plan through providers, roll back, checkpointing state as it goes."""
