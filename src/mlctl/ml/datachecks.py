"""Data checks a dataset must pass before anything trains on it.

Contract: :func:`run_checks` takes a frame as returned by :func:`mlctl.ml.tables.read_table`
and a :class:`~mlctl.spec.models.Dataset`, and returns one :class:`CheckResult` per check,
in a stable order: ``schema`` (always), ``min_rows``, ``max_null_ratio``, then per column
(in the order declared) ``columns.<col>.not_null``, ``.max_null_ratio``, ``.min``, ``.max``,
``.allowed``. It never raises for bad data: bad data is a failed result with a human detail.
Null values count against null checks only; ``min``/``max``/``allowed`` look at non-null values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlctl.ml.tables import coerce_series
from mlctl.spec.models import ColumnCheck, Dataset

__all__ = ["CheckResult", "run_checks"]


@dataclass(frozen=True)
class CheckResult:
    """One data check: a dotted name, whether it passed, and a one-line human detail."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def run_checks(df: pd.DataFrame, dataset: Dataset) -> list[CheckResult]:
    """Run the schema check and every check declared in ``dataset.checks`` on ``df``."""
    results = [_schema(df, dataset)]
    checks = dataset.checks
    rows = len(df)
    if checks.min_rows is not None:
        ok = rows >= checks.min_rows
        op = ">=" if ok else "<"
        results.append(CheckResult("min_rows", ok, f"{rows} rows {op} min_rows {checks.min_rows}"))
    if checks.max_null_ratio is not None:
        results.append(_table_nulls(df, checks.max_null_ratio))
    for column, check in checks.columns.items():
        results.extend(_column(df, column, check))
    return results


def _schema(df: pd.DataFrame, dataset: Dataset) -> CheckResult:
    declared = dict(dataset.schema_)
    if dataset.timestamp and dataset.timestamp not in declared:
        declared[dataset.timestamp] = "datetime"
    missing = [c for c in declared if c not in df.columns]
    problems = []
    if missing:
        problems.append("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    for column, kind in declared.items():
        if column in missing:
            continue
        _, bad = coerce_series(df[column], kind)
        count = int(bad.sum())
        if count:
            example = df[column][bad].iloc[0]
            problems.append(f"{column} has {count} values that are not {kind} (e.g. {_show(example)})")
    if problems:
        return CheckResult("schema", False, "; ".join(problems))
    return CheckResult("schema", True, f"{len(declared)} declared columns present and typed")


def _table_nulls(df: pd.DataFrame, limit: float) -> CheckResult:
    if df.empty or len(df.columns) == 0:
        return CheckResult("max_null_ratio", True, "no rows")
    ratios = df.isna().mean()
    worst = str(ratios.idxmax())
    ratio = float(ratios.max())
    over = [str(c) for c, r in ratios.items() if r > limit]
    if over:
        detail = (
            f"{len(over)} column(s) above max_null_ratio {limit:g}; worst {worst} has null ratio {ratio:.4g}"
        )
        return CheckResult("max_null_ratio", False, detail)
    return CheckResult("max_null_ratio", True, f"highest null ratio {ratio:.4g} ({worst}) <= {limit:g}")


def _column(df: pd.DataFrame, column: str, check: ColumnCheck) -> list[CheckResult]:
    prefix = f"columns.{column}"
    wanted = []
    if check.not_null:
        wanted.append("not_null")
    if check.max_null_ratio is not None:
        wanted.append("max_null_ratio")
    if check.min is not None:
        wanted.append("min")
    if check.max is not None:
        wanted.append("max")
    if check.allowed is not None:
        wanted.append("allowed")
    if column not in df.columns:
        return [CheckResult(f"{prefix}.{w}", False, f"column {column} is missing") for w in wanted]
    series = df[column]
    nulls = int(series.isna().sum())
    results = []
    if check.not_null:
        detail = f"{column} has {nulls} null values" if nulls else f"{column} has no nulls"
        results.append(CheckResult(f"{prefix}.not_null", nulls == 0, detail))
    if check.max_null_ratio is not None:
        ratio = nulls / len(series) if len(series) else 0.0
        ok = ratio <= check.max_null_ratio
        op = "<=" if ok else ">"
        detail = f"{column} null ratio {ratio:.4g} {op} {check.max_null_ratio:g}"
        results.append(CheckResult(f"{prefix}.max_null_ratio", ok, detail))
    if check.min is not None or check.max is not None:
        numbers = pd.to_numeric(series, errors="coerce")
        if check.min is not None:
            below = series[numbers < check.min]
            results.append(_bound(prefix, column, "min", check.min, below, "below"))
        if check.max is not None:
            above = series[numbers > check.max]
            results.append(_bound(prefix, column, "max", check.max, above, "above"))
    if check.allowed is not None:
        results.append(_allowed(prefix, column, series, check.allowed))
    return results


def _bound(prefix: str, column: str, key: str, limit: float, offending: pd.Series, word: str) -> CheckResult:
    if offending.empty:
        return CheckResult(f"{prefix}.{key}", True, f"no {column} values {word} {key} {limit:g}")
    detail = f"{column} has {len(offending)} values {word} {key} {limit:g} (e.g. {_show(offending.iloc[0])})"
    return CheckResult(f"{prefix}.{key}", False, detail)


def _allowed(
    prefix: str, column: str, series: pd.Series, allowed: list[str | int | float | bool]
) -> CheckResult:
    values = series.dropna()
    texts = {str(a) for a in allowed}
    ok = values.isin(allowed) | values.astype(str).isin(texts)
    bad = values[~ok]
    if bad.empty:
        return CheckResult(f"{prefix}.allowed", True, f"all {column} values allowed")
    distinct = list(dict.fromkeys(bad.tolist()))
    shown = ", ".join(_show(v) for v in distinct[:3]) + (", ..." if len(distinct) > 3 else "")
    detail = f"{column} has {len(bad)} values not in allowed (e.g. {shown})"
    return CheckResult(f"{prefix}.allowed", False, detail)


def _show(value: object) -> str:
    """A value as a user would write it: ``-4.2``, ``'gold'`` (no ``np.float64(...)``)."""
    item = value.item() if hasattr(value, "item") else value
    return repr(item) if isinstance(item, str) else str(item)
