"""The ML layer (floor 3): functions the engine composes to check, train and judge models; it
knows the spec and state types, never providers, plans or the engine.

Importing this package is cheap; each module imports what it needs.

* :mod:`~mlctl.ml.fingerprint`: ``fingerprint_file`` (sha256 of a data file; hashlib only,
  safe for ``plan``).
* :mod:`~mlctl.ml.tables`: ``read_table`` (CSV/Parquet with declared types and UTC timestamps).
* :mod:`~mlctl.ml.datachecks`: ``run_checks`` -> ``CheckResult`` list (schema, rows, nulls, ranges).
* :mod:`~mlctl.ml.train`: ``load_estimator`` (allow-list only), ``prepare_target``,
  ``build_pipeline`` (preprocessing + estimator: the artifact), ``train`` -> ``TrainResult``.
* :mod:`~mlctl.ml.metrics`: ``evaluate`` -> metrics (quality, single-row latency, sizes).
* :mod:`~mlctl.ml.gates`: ``evaluate_gates`` -> ``GateResult`` list, ``describe_gates``
  (no heavy imports, safe for ``plan``).
* :mod:`~mlctl.ml.profile`: ``reference_profile`` and ``reference_sample`` for drift later.
* :mod:`~mlctl.ml.plots`: feature importance and confusion matrix PNGs (Agg, no pyplot).
* :mod:`~mlctl.ml.tracking`: ``RunStore``/``Run``/``RunRecord``, a local MLflow-like run
  store with atomic writes.
* :mod:`~mlctl.ml.compiled`: tree pipelines compiled to numpy arrays, and the predictors
  serving and ``load_model`` use; :mod:`~mlctl.ml.compiled_artifact`: their ``.npz`` file,
  loaded without unpickling.
* :mod:`~mlctl.ml.mlflow_model`: a version written as an MLflow model directory (``MLmodel``).
* :mod:`~mlctl.ml.values`: ``to_bool`` and the value words tables, training and the compiled
  model share (pandas-free).

Point-in-time feature retrieval lives in :mod:`mlctl.features.offline`.
"""
