"""Train, evaluate and record one model version: the composition of :mod:`mlctl.ml` steps.

Contract: :func:`train_candidate` reads the data the request's spec names, joins features
point-in-time, trains the allow-listed estimator inside a preprocessing pipeline, evaluates it,
evaluates the gates, records a tracking run with its artifacts under the given runs folder,
and stores the model artifact, its MLflow model directory (:func:`store_mlflow_model`) and,
for tree models, its compiled numpy-only form (:func:`store_compiled`: verified bitwise
against the pipeline before it is stored) in the request's store (under ``request.artifact_prefix``,
``evaluations/`` for ``plan --evaluate``; the run is tagged ``purpose: request.purpose``).
It returns an unnumbered :class:`~mlctl.engine.candidates.Candidate`; numbering and stage
moves are the executor's job (so a crash before registration leaves nothing
half-registered in state). Callers: :func:`mlctl.engine.candidates.obtain` (apply),
``plan --evaluate`` and the training Job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlctl.engine.candidates import COMPILED_FILE, Candidate, CandidateRequest
from mlctl.ml.mlflow_model import MODEL_DIR
from mlctl.providers.base import ArtifactStore
from mlctl.providers.datasets import dataset_path
from mlctl.spec.envspec import EnvSpec
from mlctl.state.document import Artifact


def _masked(spec: EnvSpec, prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every ``${VAR}``-sourced entry shown as its placeholder."""
    return {k: spec.placeholders.get(f"{prefix}.{k}", v) for k, v in values.items()}


def signature_of(spec: EnvSpec, name: str, columns: dict[str, str], classes: list[Any]) -> dict[str, Any]:
    """Inputs (raw feature names and types) and outputs of a model: what serving validates."""
    env = spec.config
    model = env.models[name]
    inputs = []
    entity_keys: list[str] = []
    for ref, column in columns.items():
        view_name, _, feature = ref.partition(":")
        view = env.feature_views[view_name]
        inputs.append({"name": column, "type": view.features[feature], "feature": ref})
        for entity in view.entities:
            key = env.entities[entity].join_key
            if key not in entity_keys:
                entity_keys.append(key)
    return {
        "inputs": inputs,
        "entity_keys": entity_keys,
        "target": model.training.target,
        "task": model.training.task,
        "classes": [c.item() if hasattr(c, "item") else c for c in classes],
        "estimator": model.training.estimator,
    }


def store_mlflow_model(
    store: ArtifactStore, result: Any, work: Path, prefix: str, extra: dict[str, Any]
) -> Artifact:
    """Write ``result``'s MLflow model directory under ``work``, put each file in ``store``
    under ``<prefix>mlflow-model/`` and then its manifest (each file's sha256, size and stored
    record) at ``<prefix>mlflow-model.json``; returns the manifest's artifact (what the state
    records as ``ModelVersion.mlflow_model``)."""
    import json

    from mlctl.ml.mlflow_model import manifest, write_mlflow_model
    from mlctl.ml.train import input_kinds

    declared = result.feature_types
    kinds = {c: declared.get(c, kind) for c, kind in input_kinds(result.pipeline).items()}
    write_mlflow_model(
        work,
        result.pipeline,
        kinds,
        task=result.task,
        classes=list(result.classes),
        example=result.X_test if len(result.X_test) else result.X_train,
        metadata_=extra,
    )
    listing = manifest(work)
    listing["directory"] = f"{prefix}{MODEL_DIR}/"
    listing["stored"] = {
        rel: store.put(work / rel, f"{prefix}{MODEL_DIR}/{rel}").model_dump(mode="json")
        for rel in listing["files"]
    }
    body = json.dumps(listing, indent=2, sort_keys=True).encode()
    return store.put_bytes(body, f"{prefix}{MODEL_DIR}.json")


def store_compiled(
    store: ArtifactStore, result: Any, features: list[str], labels: list[Any], key: str
) -> tuple[Artifact | None, str | None]:
    """Compile ``result.pipeline`` (:mod:`mlctl.ml.compiled`), save it, load the saved bytes
    back and store them under ``key`` only if that loaded predictor reproduces the pipeline
    bitwise on rows of the training data (with holes), as one batch and row by row. Returns
    (the stored artifact, None), or (None, why not) for estimators that are not compiled or
    a compiled form that differs: the version is then served from its pickle."""
    from mlctl.ml.compiled import (
        SAVED_KINDS,
        CompileError,
        PipelinePredictor,
        compile_pipeline,
        differs,
        with_holes,
    )
    from mlctl.ml.compiled_artifact import load_compiled, save_compiled

    try:
        fast = compile_pipeline(result.pipeline, features)
        if fast.kind not in SAVED_KINDS:
            return None, f"no compiled form for a {fast.kind} model"
        data = save_compiled(fast, labels)
    except CompileError as error:
        return None, f"no compiled form: {error}"
    raw = result.raw_train if result.raw_train is not None else result.X_train
    sample = raw[features].head(400).astype(object)
    rows = [
        [None if _missing(v) else (v.item() if hasattr(v, "item") else v) for v in row]
        for row in sample.itertuples(index=False, name=None)
    ]
    difference = differs(load_compiled(data), PipelinePredictor(result.pipeline, features), with_holes(rows))
    if difference is not None:
        return None, f"compiled form not stored: {difference} on training rows"
    return store.put_bytes(data, key), None


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(value != value)  # NaN / NaT
    except (TypeError, ValueError):
        return False


def train_candidate(request: CandidateRequest, runs_root: Path) -> Candidate:
    """Train and evaluate ``request.model``'s current training spec, recording the run under
    ``runs_root``; see the module contract."""
    import json

    import joblib

    from mlctl.extras import available
    from mlctl.features.offline import ViewRequest, training_frame
    from mlctl.ml import profile
    from mlctl.ml.gates import evaluate_gates
    from mlctl.ml.metrics import evaluate
    from mlctl.ml.tables import read_table
    from mlctl.ml.tracking import RunStore
    from mlctl.ml.train import train

    spec, name, progress = request.spec, request.model, request.progress
    env = spec.config
    model = env.models[name]
    training = model.training
    tables: dict[str, Any] = {}

    def table(dataset_name: str) -> Any:
        if dataset_name not in tables:
            ds = env.datasets[dataset_name]
            tables[dataset_name] = read_table(
                dataset_path(spec, ds), ds.file_format, ds.schema_ or None, ds.timestamp
            )
        return tables[dataset_name]

    runs = RunStore(runs_root)
    tags = {
        **_masked(spec, f"models.{name}.tags", model.tags),
        "actor": request.actor,
        "purpose": request.purpose,
    }
    run = runs.start_run(name, spec.name, tags=tags, git_commit=request.git.commit)
    run.flush()  # on disk as running while it trains (the run buffers until a flush)
    try:
        progress("reading data")
        labels_ds = env.datasets[training.labels]
        views: dict[str, list[str]] = {}
        for ref in training.features:
            view_name, _, feature = ref.partition(":")
            views.setdefault(view_name, []).append(feature)
        requests = []
        for view_name, features in views.items():
            view = env.feature_views[view_name]
            source = env.datasets[view.source]
            requests.append(
                ViewRequest(
                    view=view_name,
                    join_keys=[env.entities[e].join_key for e in view.entities],
                    source=table(view.source),
                    source_ts=source.timestamp or "",
                    features=features,
                    ttl_seconds=view.ttl_seconds,
                )
            )
        joined = training_frame(table(training.labels), labels_ds.timestamp or "", requests)
        feature_types = {
            joined.columns[ref]: env.feature_views[ref.partition(":")[0]].features[ref.partition(":")[2]]
            for ref in training.features
        }
        columns = [joined.columns[ref] for ref in training.features]
        progress(f"training {training.estimator.rsplit('.', 1)[-1]} on {len(joined.frame):,} rows")
        result = train(joined.frame, columns, training.target, training, feature_types)
        progress("evaluating")
        metrics = evaluate(result)
        gates = evaluate_gates(metrics, model.gates, training.task, request.production_metrics)

        run.log_params(
            {
                "estimator": training.estimator,
                **_masked(spec, f"models.{name}.training.params", training.params),
                "test_size": training.test_size,
                "random_state": training.random_state,
                "features": ",".join(training.features),
            }
        )
        run.log_metrics(metrics)
        run.log_data(request.data)
        run.set_tags({"gates": "passed" if all(g.passed for g in gates) else "failed"})

        signature = signature_of(spec, name, joined.columns, result.classes)
        if result.task == "regression" and len(result.y_train):  # serving's histogram buckets
            y = result.y_train.astype("float64")
            signature["target_range"] = [float(y[y == y].min()), float(y[y == y].max())]
        progress("writing artifacts")
        raw_train = result.raw_train if result.raw_train is not None else result.X_train
        with tempfile.TemporaryDirectory(prefix="mlctl-train-") as tmp:
            work = Path(tmp)
            model_file = work / "model.joblib"
            joblib.dump(result.pipeline, model_file)
            key = f"{request.artifact_prefix}{name}/{run.run_id}/model.joblib"
            artifact = request.store.put(model_file, key)
            mlflow_model = store_mlflow_model(
                request.store,
                result,
                work / MODEL_DIR,
                f"{request.artifact_prefix}{name}/{run.run_id}/",
                {"model": name, "environment": spec.name, "run_id": run.run_id},
            )
            compiled, compile_note = store_compiled(
                request.store,
                result,
                [i["name"] for i in signature["inputs"]],
                list(signature["classes"]),
                f"{request.artifact_prefix}{name}/{run.run_id}/{COMPILED_FILE}",
            )
            run.log_artifact(json.dumps(signature, indent=2).encode(), "signature.json")
            run.log_artifact(
                json.dumps(profile.reference_profile(raw_train, feature_types), indent=2).encode(),
                "reference_profile.json",
            )
            sample = profile.reference_sample(raw_train, n=5000, seed=training.random_state)
            sample.to_parquet(work / "reference_sample.parquet", index=False)
            run.log_artifact(work / "reference_sample.parquet", "reference_sample.parquet")
            if available("matplotlib"):  # charts need the mlctl[report] extra; a run is whole without
                from mlctl.ml import plots

                plots.feature_importance_png(
                    result.pipeline,
                    columns,
                    work / "feature_importance.png",
                    X=result.X_test,
                    y=result.y_test,
                )
                run.log_artifact(work / "feature_importance.png", "feature_importance.png")
                if training.task == "classification":
                    y_pred = result.pipeline.predict(result.X_test)
                    plots.confusion_matrix_png(
                        result.y_test, y_pred, result.classes, work / "confusion_matrix.png"
                    )
                    run.log_artifact(work / "confusion_matrix.png", "confusion_matrix.png")
        run.set_tags(
            {
                "artifact_uri": artifact.uri,
                "artifact_sha256": artifact.sha256,
                "mlflow_model_uri": mlflow_model.uri,
                "mlflow_model_sha256": mlflow_model.sha256,
                **(
                    {"compiled_uri": compiled.uri, "compiled_sha256": compiled.sha256}
                    if compiled is not None
                    else {"compiled": compile_note or "none"}
                ),
            }
        )
        run.finish("finished")
    except BaseException as exc:
        run.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    from mlctl.providers.runfiles import run_key, ship_run

    # machines that did not train (a monitor on another runner) read the run from the store
    ship_run(request.store, runs_root / run.run_id, request.artifact_prefix + run_key(name, run.run_id))
    notes = []
    if result.n_missing_label:
        notes.append(f"{result.n_missing_label} rows without a label were dropped")
    return Candidate(
        run.run_id, metrics, gates, artifact, signature, notes, mlflow_model=mlflow_model, compiled=compiled
    )
