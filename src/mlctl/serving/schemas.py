"""Request and response models generated from a model version's signature.

A signature input ``{name, type}`` becomes a field: ``int`` -> integer (``4.0`` accepted as 4), ``float`` ->
number (integers accepted), ``bool`` -> strict boolean, ``string``/``category`` -> string,
``datetime`` -> ISO-8601 date-time. Numbers are finite and within float32 range (what the
model can compare); anything else answers 422 naming the field. Entity keys are optional
strings echoed back in the response and the prediction log. When ``features_optional`` is
set (an online store can fill them from the entity key), features may be omitted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, create_model

#: Largest magnitude a tree model compares safely (float32 max, rounded down).
LIMIT = 3.4e38
INT_LIMIT = int(LIMIT)


def _integral(value: Any) -> Any:
    """``4.0`` is the integer 4 (JSON writers often emit it); ``4.5`` stays a float (422)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= INT_LIMIT:
        return int(value)
    return value


def _field_type(kind: str) -> Any:
    if kind == "int":
        return Annotated[StrictInt, BeforeValidator(_integral), Field(ge=-INT_LIMIT, le=INT_LIMIT)]
    if kind == "float":
        return Annotated[float, Field(ge=-LIMIT, le=LIMIT, allow_inf_nan=False, strict=True)]
    if kind == "bool":
        return StrictBool
    if kind == "datetime":
        return datetime
    return Annotated[str, Field(strict=True, max_length=10_000)]


class _Base(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False)


def request_model(
    model: str, signature: dict[str, Any], *, features_optional: bool = False
) -> type[BaseModel]:
    """The pydantic model of one ``POST /predict`` body for ``signature``."""
    fields: dict[str, Any] = {}
    inputs = signature.get("inputs") or []
    names = {i["name"] for i in inputs}
    for key in signature.get("entity_keys") or []:
        if key not in names:
            fields[key] = (
                Annotated[str, Field(strict=True, max_length=1000)] | None,
                Field(default=None, description="entity key"),
            )
    for item in inputs:
        kind = _field_type(str(item.get("type", "float")))
        description = f"{item.get('type')} feature {item.get('feature', item['name'])}"
        if features_optional:
            fields[item["name"]] = (kind | None, Field(default=None, description=description))
        else:
            fields[item["name"]] = (kind, Field(description=description))
    title = "".join(part.capitalize() for part in model.replace("_", "-").split("-")) + "Request"
    return create_model(title, __base__=_Base, **fields)


def response_schema(signature: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of one prediction in a response."""
    properties: dict[str, Any] = {}
    for key in signature.get("entity_keys") or []:
        properties[key] = {"type": ["string", "null"]}
    classification = signature.get("task", "classification") == "classification"
    properties["prediction"] = {} if classification else {"type": "number"}
    properties["probability"] = {"type": ["number", "null"]}
    properties["risk_level"] = {"type": ["string", "null"]}
    properties["model"] = {"type": "string"}
    properties["version"] = {"type": "integer"}
    return {
        "type": "object",
        "properties": properties,
        "required": ["prediction", "probability", "risk_level", "model", "version"],
    }
