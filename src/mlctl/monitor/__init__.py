"""Monitoring that closes the loop: drift, quality and serving checks, retraining triggers and
auto-rollback.

Layers: :mod:`~mlctl.monitor.stats` (pure statistics), :mod:`~mlctl.plan.triggers` (in the plan layer, light:
what the planner and executor need to know about retraining triggers), and the runner
(:mod:`~mlctl.monitor.runner`) that reads reference and current data, evaluates monitors
(:mod:`~mlctl.monitor.checks`), records results in state, and carries out actions
(:mod:`~mlctl.monitor.actions`); reports are rendered by :mod:`~mlctl.monitor.report`.
Importing this package is cheap.
"""
