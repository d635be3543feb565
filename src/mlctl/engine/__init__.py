"""The engine (floor 7): makes a plan so, through providers, checkpointing state after each action.

* :mod:`~mlctl.engine.apply`: the executor (typed outcome per action) and the data-check gate.
* :mod:`~mlctl.engine.candidates`: the candidate store; ``obtain(CandidateRequest)`` chooses
  reuse -> cluster Job (:mod:`~mlctl.engine.remote_training`) -> local training
  (:mod:`~mlctl.engine.training`).
* :mod:`~mlctl.engine.evaluate`: ``plan --evaluate`` (candidates trained beside the plan).
* :mod:`~mlctl.engine.rollback`, :mod:`~mlctl.engine.registry`: stage moves with history.
* :mod:`~mlctl.engine.reality`: the planner's ``Reality`` implemented with providers.

Nothing here takes the lock: the callers in :mod:`mlctl.operations` do.
"""
