"""What to do when a test needs something this machine lacks."""

from __future__ import annotations

import os

import pytest


def require(message: str) -> None:
    """A component a test needs is missing: skipped on a developer's machine, a failure under CI
    (``CI`` set, as ``.ci/run`` does), so a broken install can never pass as skips."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
