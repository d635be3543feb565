"""Tests that need a real Kubernetes cluster: marked ``cluster``, run only with ``KUBECONFIG``."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs a real Kubernetes cluster (KUBECONFIG set)")
