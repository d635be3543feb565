"""The plan (floor 5): the difference between the desired state and the state, as data.

* :mod:`~mlctl.plan.resources`: desired resources by address, in dependency order.
* :mod:`~mlctl.plan.planner`: ``make_plan`` -- refresh through :class:`~mlctl.plan.refresh.Reality`
  (the only way the planner sees files, artifacts and live endpoints), diff, stage resolution.
* :mod:`~mlctl.plan.stage_targets`: which version each stage should hold (shared with the executor).
* :mod:`~mlctl.plan.triggers`: retraining triggers the planner and the monitors agree on.
* :mod:`~mlctl.plan.model`: ``Plan`` and ``ResourceChange``; saved plans and their freshness.
* :mod:`~mlctl.plan.diff`, :mod:`~mlctl.plan.render`, :mod:`~mlctl.plan.comment`: the views --
  text, JSON and the markdown PR comment.
* :mod:`~mlctl.plan.diagnostics`: the one view of :class:`~mlctl.errors.Diagnostic` values
  (text lines, or the JSON document of ``validate``/``plan --format json``).

Planning never trains, never writes state and never runs code the YAML names.
"""
