"""Monitoring that closes the loop (floor 8): drift, quality and serving checks, retraining
triggers and auto-rollback.

Layers: :mod:`~mlctl.monitor.stats` (pure statistics), :mod:`~mlctl.plan.triggers` (in the plan layer, light:
what the planner and executor need to know about retraining triggers), the read-only evaluation
(:mod:`~mlctl.monitor.evaluation`) of monitors into a :class:`~mlctl.monitor.run.RunResult`,
and the actions (:mod:`~mlctl.monitor.actions`);
:func:`mlctl.operations.monitor` runs them under the lock and records the results in state;
reports are rendered by :mod:`~mlctl.monitor.report`.

One monitor is judged by :mod:`~mlctl.monitor.judge` (``evaluate``: picks the check for the
monitor's kind), which runs :mod:`~mlctl.monitor.drift` (inputs and predictions against the
training-time reference), :mod:`~mlctl.monitor.quality` (accuracy and AUC from delayed labels)
or :mod:`~mlctl.monitor.serving_checks` (p95 latency, error rate and volume from the prediction log);
they read their data through :mod:`~mlctl.monitor.sources` and return the types of
:mod:`~mlctl.monitor.findings` (``Finding``, ``MonitorResult``, ``ActionResult``).
Importing this package is cheap.
"""
