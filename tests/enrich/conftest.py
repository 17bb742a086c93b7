from __future__ import annotations

from pathlib import Path

import pytest

from tests.needs import require

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SEED = SHARED / "seeds" / "000_d53218aacc3a3954.txt"


@pytest.fixture(scope="session")
def seed_text() -> str:
    if not SEED.exists():
        require(f"seed page not found at {SEED}")
    return SEED.read_text(encoding="utf-8")
