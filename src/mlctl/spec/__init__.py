"""The desired state: schema (pydantic models), loader, validation and JSON Schema export.

``load_environment(repo, env)`` is the entry point: it returns a validated :class:`EnvSpec`
or raises :class:`~mlctl.errors.ConfigError` with every located diagnostic.
"""

from mlctl.spec.loader import EnvSpec, SourceMap, list_environments, load_environment
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
