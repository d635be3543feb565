"""The desired state (floor 2): schema (pydantic models), loader, validation and JSON Schema
export. Imports only the ground floors (errors, files, redaction).

``load_environment(repo, env)`` is the entry point: it returns a validated :class:`EnvSpec`
or raises :class:`~mlctl.errors.ConfigError` with every located diagnostic.

Modules: :mod:`~mlctl.spec.models` (the schema), :mod:`~mlctl.spec.estimators` (the
allow-listed estimator classes), :mod:`~mlctl.spec.envspec` (:class:`EnvSpec`,
:class:`SourceMap`), :mod:`~mlctl.spec.loader` (``load_environment``: the steps in order),
:mod:`~mlctl.spec.yamlreader` (YAML with file:line and ``${VAR}``), :mod:`~mlctl.spec.merge`
(files merged, names defined twice), :mod:`~mlctl.spec.pydantic_errors` (schema errors as
diagnostics), :mod:`~mlctl.spec.validate` (cross references, paths, schedules),
:mod:`~mlctl.spec.names` (did-you-mean and "is not defined"), :mod:`~mlctl.spec.schema`
(JSON Schema) and :mod:`~mlctl.spec.views` (the feature view schema).
"""

from mlctl.spec.envspec import EnvSpec, SourceMap
from mlctl.spec.loader import list_environments, load_environment
from mlctl.spec.schema import json_schema, provider_json_schema
from mlctl.spec.validate import validate

__all__ = [
    "EnvSpec",
    "SourceMap",
    "json_schema",
    "list_environments",
    "load_environment",
    "provider_json_schema",
    "validate",
]
