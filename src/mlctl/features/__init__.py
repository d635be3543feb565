"""The feature store (floor 6): offline point-in-time retrieval, online stores, materialization.

* :mod:`~mlctl.features.offline`: point-in-time joins honouring ttl.
* :mod:`~mlctl.features.online`: the SQLite (embedded) and Redis online stores, one contract.
* :mod:`~mlctl.features.materialize`: incremental materialization by watermark.
* :mod:`~mlctl.features.store`: ``FeatureStore``, the Feast-shaped Python API.
"""
