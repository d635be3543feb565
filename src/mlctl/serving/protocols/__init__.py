"""Standard inference protocols served next to ``/predict``: MLflow's scoring protocol
(:mod:`~mlctl.serving.protocols.mlflow_scoring`, ``POST /invocations``) and the Open Inference
Protocol v2 (:mod:`~mlctl.serving.protocols.oip`, KServe's ``/v2/...``).

Contract: both decode their payload into rows of named values (:mod:`~.rows`), then run the
same steps as ``/predict/batch`` (:meth:`~mlctl.serving.service.Service.parse`, then
:meth:`~mlctl.serving.service.Service.score`) on the one live version the request read, so
validation, rollout arms (split, header, log field, shadow), online features, metrics, the
prediction log record and hot swaps are those of ``/predict``. Only the wire format and the
error shape differ (:mod:`~.paths`).
"""
