"""Untrusted input (docs/security.md): what a pull request's YAML can make mlctl print, read or
crash on. One test per finding of issue 11's input half; each failed before the fix.

- Secrets: every message shows a ``${VAR}`` value as its placeholder; the CLI's output, error
  lines, crash log and the PR comment are redacted whatever code printed them; S3 errors repeat
  no URL or server text; ``${VAR}`` is refused where it would aim a request; an unused provider
  file widens no bucket allow-list.
- Paths: ``.git/``, the state directory and file, and provider roots are no dataset; a
  symlinked environment or provider file is refused.
- Crashes: a section given as a list in a second file, params nested hundreds of levels, huge
  durations, ``plan --changed`` on deeply nested YAML, NaN bounds: exit 1, one located line,
  the state byte-identical.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from conftest import edit, invoke

D = "environments/dev"
SECRET = "hunter2-top-secret-value"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLCTL_TEST_SECRET", SECRET)
    yield SECRET


def state_bytes(repo: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((repo / "state").iterdir()) if p.is_file()}


def one_located_error(result: Result, file: str, *words: str) -> str:
    """The run failed with exit 1 and exactly one ``Error:`` line, at ``file:line``."""
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "Traceback" not in output and "crashed" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    assert re.match(rf"Error: {re.escape(file)}:\d+: ", errors[0]), errors[0]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


# ----------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("file", "old", "new", "words"),
    [
        ("models.yaml", '"0 6 * * 1"', '"${MLCTL_TEST_SECRET}"', ["cron"]),
        ("monitors.yaml", "labels: churn_outcomes ", "labels: ${MLCTL_TEST_SECRET} ", ["unknown dataset"]),
        ("monitors.yaml", "current: predictions ", "current: 'x-${MLCTL_TEST_SECRET}' ", ["dataset"]),
        (
            "data.yaml",
            "churn_outcomes.csv\n    timestamp: event_timestamp",
            "churn_outcomes.csv\n    timestamp: ${MLCTL_TEST_SECRET}",
            ["timestamp"],
        ),
        ("deployments.yaml", "model: churn-predictor", "model: ${MLCTL_TEST_SECRET}", ["unknown model"]),
        # training inputs are refused (test_var_is_refused_in_training_inputs), naming the placeholder
        ("models.yaml", "sklearn.ensemble.RandomForestClassifier", "${MLCTL_TEST_SECRET}", ["estimator"]),
        ("features.yaml", "entities: [customer]", "entities: ['x-${MLCTL_TEST_SECRET}']", ["entit"]),
    ],
)
def test_validation_errors_show_the_placeholder_not_the_value(
    repo: Path, secret_env: str, file: str, old: str, new: str, words: list[str]
) -> None:
    edit(repo / D / file, old, new)
    result = invoke(repo, "validate", "-e", "dev")
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert secret_env not in output
    assert "${MLCTL_TEST_SECRET}" in output
    assert any(word in output for word in words), output


def test_cli_output_error_lines_and_crash_log_are_redacted(
    repo: Path, secret_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One redaction step for everything the CLI prints: a message that carries a resolved
    value (here a NotFound naming the missing file), any other line, the crash log."""
    from mlctl.cli import boundary
    from mlctl.errors import MlctlError
    from mlctl.spec import load_environment

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-never-printed")
    monkeypatch.setenv("MLCTL_CRASH_DIR", str(tmp_path / "crash"))
    edit(repo / D / "data.yaml", "description: Delayed labels", "description: ${MLCTL_TEST_SECRET} labels")

    def command(crash: bool) -> None:
        spec = load_environment(repo, "dev")  # resolves the secret, as any command does
        print(f"a line carrying {spec.config.datasets['churn_outcomes'].description}")
        if crash:
            raise RuntimeError(f"bug with {SECRET} and aws-secret-never-printed")
        raise MlctlError(f"cannot read {SECRET}.csv (aws-secret-never-printed)")

    for crash, code in ((False, 1), (True, 3)):
        with pytest.raises(SystemExit) as exited, boundary.error_boundary():
            command(crash)
        assert exited.value.code == code
    assert not isinstance(sys.stdout, boundary.RedactingStream)  # restored after the command
    logs = list((tmp_path / "crash").iterdir())
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "RuntimeError" in text and SECRET not in text and "aws-secret-never-printed" not in text
    assert "${MLCTL_TEST_SECRET}" in text and "${AWS_SECRET_ACCESS_KEY}" in text


def test_cli_streams_are_redacted(repo: Path, secret_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mlctl.cli import boundary
    from mlctl.errors import MlctlError
    from mlctl.spec import load_environment

    edit(repo / D / "data.yaml", "description: Delayed labels", "description: ${MLCTL_TEST_SECRET} labels")
    with pytest.raises(SystemExit), boundary.error_boundary():
        spec = load_environment(repo, "dev")
        print(spec.config.datasets["churn_outcomes"].description)
        raise MlctlError(f"cannot read {SECRET}.csv")
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "${MLCTL_TEST_SECRET} labels" in out
    assert "Error: cannot read ${MLCTL_TEST_SECRET}.csv" in err


def test_pr_comment_and_renderers_redact_resolved_values() -> None:
    from mlctl import redaction
    from mlctl.plan.comment import Report, build_comment
    from mlctl.plan.model import Plan, ResourceChange
    from mlctl.plan.render import render_json, render_markdown, render_text

    change = ResourceChange(
        address="dataset.x",
        type="dataset",
        name="x",
        actions=["check"],
        reason=f"data file {SECRET}.csv changed",
        details=[f"path: {SECRET}.csv"],
        blocking=[f"check failed on {SECRET}.csv"],
    )
    plan = Plan(
        environment="dev",
        created_at="2026-01-01T00:00:00Z",
        spec_digest="x",
        resource_changes=[change],
        warnings=[f"cannot read {SECRET}"],
    )
    with redaction.scope({}):
        redaction.remember(SECRET, "${MLCTL_TEST_SECRET}")
        outputs = [
            *build_comment(Report([plan])),
            render_markdown(plan),
            render_text(plan),
            render_json(plan),
        ]
    for text in outputs:
        assert SECRET not in text


def test_redaction_catches_quoted_forms_and_keeps_short_values() -> None:
    from mlctl.redaction import Secrets

    secrets = Secrets({'pa"ss/wörd': "${PW}", "abc": "${SHORT}", 's3://b/pa"ss/wörd/x': "s3://b/${PW}/x"})
    assert secrets.redact('{"key": "pa\\"ss/w\\u00f6rd"}') == '{"key": "${PW}"}'
    assert secrets.redact("pa%22ss%2Fw%C3%B6rd") == "${PW}"
    assert secrets.redact('s3://b/pa"ss/wörd/x and pa"ss/wörd') == "s3://b/${PW}/x and ${PW}"
    assert secrets.redact("abc is too short to hide") == "abc is too short to hide"


def test_s3_errors_repeat_no_url_key_or_server_text() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

    from mlctl.s3client import s3_error

    url = f"http://attacker.example:9000/bucket/{SECRET}?X-Amz-Signature=abc"
    message = str(s3_error(EndpointConnectionError(endpoint_url=url), "read s3://bucket/data.csv"))
    assert SECRET not in message and "attacker" not in message and "cannot reach" in message
    client = ClientError(
        {
            "Error": {"Code": "SlowDown", "Message": f"echo {SECRET}"},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        },
        "GetObject",
    )
    message = str(s3_error(client, "read s3://bucket/data.csv"))
    assert SECRET not in message and "SlowDown" in message and "503" in message
    invalid = ParamValidationError(report=f'Invalid bucket name "{SECRET}"')
    assert SECRET not in str(s3_error(invalid, "read s3://bucket/data.csv"))


@pytest.mark.parametrize(
    ("where", "text", "key"),
    [
        (
            "provider",
            "type: s3\nbucket: models\nendpoint_url: http://${MLCTL_TEST_SECRET}.example\n",
            "endpoint_url",
        ),
        ("provider", "type: s3\nbucket: ${MLCTL_TEST_SECRET}\n", "bucket"),
        ("provider", "type: s3\nbucket: models\nprefix: p/${MLCTL_TEST_SECRET}\n", "prefix"),
        ("backend", "backend: {type: s3, bucket: b, key: 'state/${MLCTL_TEST_SECRET}.json'}\n", "key"),
        ("backend", "backend: {type: s3, bucket: '${MLCTL_TEST_SECRET}', key: s.json}\n", "bucket"),
        (
            "backend",
            "backend: {type: s3, bucket: b, key: s.json, endpoint_url: '${MLCTL_TEST_SECRET}'}\n",
            "endpoint_url",
        ),
        ("dataset", "s3://bucket/${MLCTL_TEST_SECRET}/data.csv", "s3:// dataset path"),
        # botocore signs the region into the Authorization header's credential scope
        ("provider", "type: s3\nbucket: models\nregion: ${MLCTL_TEST_SECRET}\n", "region"),
        ("provider", "type: s3\nbucket: models\nprofile: ${MLCTL_TEST_SECRET}\n", "profile"),
        (
            "backend",
            "backend: {type: s3, bucket: b, key: s.json, region: '${MLCTL_TEST_SECRET}'}\n",
            "region",
        ),
        (
            "backend",
            "backend: {type: s3, bucket: b, key: s.json, profile: '${MLCTL_TEST_SECRET}'}\n",
            "profile",
        ),
        ("backend", "backend: {type: local, path: 'state/${MLCTL_TEST_SECRET}.json'}\n", "path"),
        ("redis", "type: redis\nhost: '${MLCTL_TEST_SECRET}'\n", "host"),
        ("redis", "type: redis\nurl: 'redis://${MLCTL_TEST_SECRET}:6379/0'\n", "url"),
        ("redis", "type: redis\nurl: 'redis://:pw@cache:6379/${MLCTL_TEST_SECRET}'\n", "url"),
        ("redis", "type: redis\nkey_prefix: '${MLCTL_TEST_SECRET}'\n", "key_prefix"),
    ],
)
def test_var_is_refused_where_it_would_aim_a_request(
    repo: Path, secret_env: str, where: str, text: str, key: str
) -> None:
    if where == "provider":
        (repo / "providers" / "s3.yaml").write_text(text)
        edit(repo / D / "environment.yaml", "artifacts: local", "artifacts: s3")
        file = "providers/s3.yaml"
    elif where == "redis":
        (repo / "providers" / "redis.yaml").write_text(text)
        edit(repo / D / "environment.yaml", "training: local", "training: local\n  online: redis")
        file = "providers/redis.yaml"
    elif where == "backend":
        environment = repo / D / "environment.yaml"
        body = environment.read_text()
        start = body.index("backend:")
        end = body.index("providers:")
        environment.write_text(body[:start] + text + body[end:])
        file = f"{D}/environment.yaml"
    else:
        edit(repo / D / "data.yaml", "path: data/churn_outcomes.csv", f"path: {text}")
        file = f"{D}/data.yaml"
    line = one_located_error(invoke(repo, "validate", "-e", "dev"), file, "${VAR} is not allowed", key)
    assert SECRET not in line


def test_var_is_accepted_where_it_holds_a_secret(repo: Path, secret_env: str) -> None:
    """A redis password, and the password part of a redis url, may come from the environment."""
    from mlctl.spec import load_environment

    edit(repo / D / "environment.yaml", "training: local", "training: local\n  online: redis")
    for text in (
        "type: redis\nhost: cache\npassword: ${MLCTL_TEST_SECRET}\n",
        "type: redis\nurl: 'redis://:${MLCTL_TEST_SECRET}@cache:6379/0'\n",
    ):
        (repo / "providers" / "redis.yaml").write_text(text)
        result = invoke(repo, "validate", "-e", "dev")
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
    assert load_environment(repo, "dev").secret_paths == {"provider:redis.url"}


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("provider", "type: s3\nbucket: models\nregion: 'eu west 1'\n"),
        ("provider", "type: s3\nbucket: models\nregion: AKIAEXAMPLESECRETVALUE\n"),
        ("backend", "backend: {type: s3, bucket: b, key: s.json, region: 'us-east-1\\nX-Amz: 1'}\n"),
    ],
)
def test_region_must_be_a_region_name(repo: Path, where: str, text: str) -> None:
    if where == "provider":
        (repo / "providers" / "s3.yaml").write_text(text)
        edit(repo / D / "environment.yaml", "artifacts: local", "artifacts: s3")
        file = "providers/s3.yaml"
    else:
        environment = repo / D / "environment.yaml"
        body = environment.read_text()
        environment.write_text(body[: body.index("backend:")] + text + body[body.index("providers:") :])
        file = f"{D}/environment.yaml"
    one_located_error(
        invoke(repo, "validate", "-e", "dev"), file, "region", "is not a region name like us-east-1"
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "key"),
    [
        ("models.yaml", "max_depth: 8", "max_depth: '${MLCTL_TEST_SECRET}'", "training.params.max_depth"),
        ("models.yaml", "class_weight: balanced", "class_weight: '${MLCTL_TEST_SECRET}'", "training.params"),
        ("models.yaml", "target: churned", "target: ${MLCTL_TEST_SECRET}", "training.target"),
        ("models.yaml", "labels: churn_labels ", "labels: ${MLCTL_TEST_SECRET} ", "training.labels"),
        ("models.yaml", "test_size: 0.2", "test_size: '${MLCTL_TEST_SECRET}'", "training.test_size"),
        ("features.yaml", "ttl: 90d", "ttl: '${MLCTL_TEST_SECRET}'", "customer_features.ttl"),
        ("features.yaml", "source: customer_activity", "source: ${MLCTL_TEST_SECRET}", "source"),
        ("features.yaml", "total_orders_30d: int", "total_orders_30d: '${MLCTL_TEST_SECRET}'", "features"),
        ("features.yaml", "join_key: customer_id", "join_key: ${MLCTL_TEST_SECRET}", "join_key"),
        ("features.yaml", "value_type: string", "value_type: ${MLCTL_TEST_SECRET}", "value_type"),
        ("data.yaml", "timestamp: event_timestamp ", "timestamp: ${MLCTL_TEST_SECRET} ", "timestamp"),
        ("data.yaml", "path: data/churn_labels.csv", "path: 'data/${MLCTL_TEST_SECRET}.csv'", "path"),
    ],
)
def test_var_is_refused_in_training_inputs(
    applied: Path, secret_env: str, file: str, old: str, new: str, key: str
) -> None:
    """The version identity would hold the placeholder, so a changed variable would train other
    bytes under the same identity ("No changes"): every training input is written out."""
    edit(applied / D / file, old, new)
    before = state_bytes(applied)
    for command in ("validate", "plan"):
        line = one_located_error(
            invoke(applied, command, "-e", "dev"),
            f"{D}/{file}",
            key,
            "${MLCTL_TEST_SECRET}",
            "training inputs cannot come from the environment: they enter the version identity",
        )
        assert SECRET not in line
    assert state_bytes(applied) == before


def test_unused_provider_widens_no_bucket_allow_list(repo: Path) -> None:
    """A PR adds providers/evil.yaml (no role names it) and reads a dataset from its bucket."""
    from mlctl.spec import load_environment

    (repo / "providers" / "evil.yaml").write_text(
        "type: s3\nbucket: evil-bucket\nendpoint_url: http://attacker.example:9000\n"
    )
    assert "evil" not in load_environment(repo, "dev").providers
    edit(repo / D / "data.yaml", "path: data/churn_outcomes.csv", "path: s3://evil-bucket/data.csv")
    one_located_error(invoke(repo, "validate", "-e", "dev"), f"{D}/data.yaml", "evil-bucket", "does not use")


def test_used_s3_provider_bucket_is_readable_outside_its_artifact_prefix(repo: Path) -> None:
    (repo / "providers" / "s3.yaml").write_text("type: s3\nbucket: models\nprefix: artifacts\n")
    edit(repo / D / "environment.yaml", "artifacts: local", "artifacts: s3")
    edit(repo / D / "data.yaml", "path: data/churn_outcomes.csv", "path: s3://models/data/outcomes.csv")
    assert invoke(repo, "validate", "-e", "dev").exit_code == 0
    edit(repo / D / "data.yaml", "s3://models/data/outcomes.csv", "s3://models/artifacts/dev/x.csv")
    one_located_error(invoke(repo, "validate", "-e", "dev"), f"{D}/data.yaml", "artifact prefix")


# ----------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (".git/config", ".git/"),
        ("data/../.git/config", ".git/"),
        (".GIT/config", ".git/"),
        ("state/dev.json", "state directory"),
        ("state/prod.json", "state directory"),
        (".mlctl/runs/dev/x.csv", "artifact root"),
        ("artifacts-root/x.csv", "root of provider 'local'"),
        ("link.csv", ".git/"),
    ],
)
def test_dataset_path_refuses_credentials_state_and_provider_roots(
    applied: Path, path: str, words: str
) -> None:
    _git(applied, "init", "-q")
    _git(applied, "config", "http.extraheader", "AUTHORIZATION: basic c2VjcmV0")  # as actions/checkout
    (applied / "link.csv").symlink_to(".git/config")
    (applied / "providers" / "local.yaml").write_text("type: local\nroot: artifacts-root\n")
    before = state_bytes(applied)
    edit(applied / D / "data.yaml", "path: data/churn_outcomes.csv", f"path: {path}")
    for command in (["validate", "-e", "dev"], ["plan", "-e", "dev"]):
        one_located_error(invoke(applied, *command), f"{D}/data.yaml", "datasets.churn_outcomes.path", words)
    assert state_bytes(applied) == before


@pytest.mark.parametrize("kind", ["environment", "provider"])
def test_symlinked_yaml_is_refused(repo: Path, tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside.yaml"
    if kind == "environment":
        outside.write_text("entities:\n  stolen: {join_key: x}\n")
        link = repo / D / "zz-link.yaml"
    else:
        outside.write_text("type: local\nroot: .mlctl\n")
        link = repo / "providers" / "linked.yaml"
    link.symlink_to(outside)
    rel = link.relative_to(repo).as_posix()
    result = invoke(repo, "validate", "-e", "dev")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: {rel}: is a symbolic link; environment and provider files must be regular files "
        "(replace the link with the file it points to)"
    ]


# ----------------------------------------------------------------------------- crashes


def test_section_given_as_a_list_in_a_second_file(applied: Path) -> None:
    before = state_bytes(applied)
    (applied / D / "zz-more.yaml").write_text("# more models\nmodels:\n  - churn-predictor\n")
    for command in (["validate", "-e", "dev"], ["plan", "-e", "dev"]):
        one_located_error(invoke(applied, *command), f"{D}/zz-more.yaml", "'models' must be a mapping")
    assert state_bytes(applied) == before


@pytest.mark.parametrize("depth", [300, 900])
def test_params_nested_hundreds_of_levels(applied: Path, depth: int) -> None:
    before = state_bytes(applied)
    nested = "{a: " * depth + "1" + "}" * depth
    edit(applied / D / "models.yaml", "class_weight: balanced", f"class_weight: {nested}")
    for command in (["validate", "-e", "dev"], ["plan", "-e", "dev"]):
        one_located_error(invoke(applied, *command), f"{D}/models.yaml", "nested deeper than")
    assert state_bytes(applied) == before


@pytest.mark.parametrize(
    ("file", "old", "new", "key"),
    [
        ("features.yaml", "ttl: 90d", "ttl: 99999999999999999999d", "ttl"),
        ("features.yaml", "ttl: 90d", "ttl: 36501d", "ttl"),
        (
            "monitors.yaml",
            "kind: performance",
            "kind: performance\n    window: 99999999999999999999w",
            "window",
        ),
        (
            "monitors.yaml",
            "kind: drift",
            "kind: drift\n    window: 9999999999999999999999999999999999h",
            "window",
        ),
    ],
)
def test_durations_are_bounded_at_validation(applied: Path, file: str, old: str, new: str, key: str) -> None:
    before = state_bytes(applied)
    edit(applied / D / file, old, new)
    for command in (["validate", "-e", "dev"], ["plan", "-e", "dev"]):
        line = one_located_error(invoke(applied, *command), f"{D}/{file}", key)
        assert "100 years" in line
    assert state_bytes(applied) == before


def test_duration_bound_holds_at_every_use_site() -> None:
    """The longest duration validation lets through works in datetime, pandas and int64 ns."""
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd

    from mlctl.spec.models import MAX_DURATION_SECONDS, duration_seconds

    assert duration_seconds("36500d") == MAX_DURATION_SECONDS
    datetime.now(UTC) - timedelta(seconds=MAX_DURATION_SECONDS)
    pd.Timestamp.now() - pd.Timedelta(seconds=MAX_DURATION_SECONDS)
    assert np.int64(MAX_DURATION_SECONDS) * 1_000_000_000 > 0
    with pytest.raises(ValueError, match="100 years"):
        duration_seconds("5215w")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("avg_order_value: {min: 0}", "avg_order_value: {min: .nan}"),
        ("avg_order_value: {min: 0}", "avg_order_value: {max: .inf}"),
        ("avg_order_value: {min: 0}", "avg_order_value: {min: -.inf}"),
        ("max_null_ratio: 0.05", "max_null_ratio: .nan"),
    ],
)
def test_non_finite_column_bounds_are_refused(applied: Path, old: str, new: str) -> None:
    before = state_bytes(applied)
    edit(applied / D / "data.yaml", old, new)
    one_located_error(invoke(applied, "validate", "-e", "dev"), f"{D}/data.yaml", "finite")
    assert state_bytes(applied) == before


def test_non_finite_estimator_param_is_refused(repo: Path) -> None:
    edit(repo / D / "models.yaml", "max_depth: 8", "max_depth: .nan")
    one_located_error(invoke(repo, "validate", "-e", "dev"), f"{D}/models.yaml", "max_depth", "finite")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)


def test_plan_changed_on_deeply_nested_yaml(applied: Path) -> None:
    _git(applied, "init", "-q", "-b", "main")
    _git(applied, "-c", "user.name=t", "-c", "user.email=t@e", "add", "-A")
    _git(
        applied,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-qm",
        "i",
    )
    before = state_bytes(applied)
    (applied / D / "zz-deep.yaml").write_text("tags: " + "[" * 900 + "1" + "]" * 900 + "\n")
    with (applied / "providers" / "local.yaml").open("a") as handle:
        handle.write("# touched: plan --changed reads every environment's files to attribute it\n")
    result = invoke(applied, "plan", "--changed", "--base", "main")
    one_located_error(result, f"{D}/zz-deep.yaml", "nested deeper than")
    assert state_bytes(applied) == before


def test_changed_attribution_never_raises_on_odd_files(tmp_path: Path) -> None:
    from mlctl.gitops.changed import _providers_used

    env = tmp_path / "environments" / "dev"
    env.mkdir(parents=True)
    (env / "a.yaml").write_text("x: " + "[" * 990 + "]" * 990 + "\n")
    assert _providers_used(tmp_path, "dev") is None
    (env / "a.yaml").write_bytes(b"\xff\xfe not utf-8")
    assert _providers_used(tmp_path, "dev") is None
    os.remove(env / "a.yaml")
    (env / "a.yaml").symlink_to("/etc/hostname")
    assert _providers_used(tmp_path, "dev") is None


@pytest.mark.parametrize(
    "key",
    [
        "./artifacts/dev/x.csv",
        "data/./x.csv",
        "data/../artifacts/dev/x.csv",
        "data//x.csv",
        "/data/x.csv",
        "data/",
    ],
)
def test_s3_dataset_key_refuses_dot_dotdot_and_empty_segments(repo: Path, key: str) -> None:
    """`s3://models/./artifacts/...` once passed the artifact-prefix check (keys compared unnormalised)."""
    (repo / "providers" / "s3.yaml").write_text("type: s3\nbucket: models\nprefix: artifacts\n")
    edit(repo / D / "environment.yaml", "artifacts: local", "artifacts: s3")
    edit(repo / D / "data.yaml", "path: data/churn_outcomes.csv", f"path: s3://models/{key}")
    one_located_error(invoke(repo, "validate", "-e", "dev"), f"{D}/data.yaml", "'.', '..' or empty segments")
