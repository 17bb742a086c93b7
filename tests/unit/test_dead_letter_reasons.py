"""Dead letters carry one of a closed set of reason codes (issue 15, item 6), kept in one place
(contract/reasons.py) and published as the enum of dead_letter.v1.json."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

import newsstream
from newsstream.contract import wire
from newsstream.contract.reasons import DEAD_LETTER_REASONS
from newsstream.contract.schemas import schema_documents
from newsstream.errors import DataError

PACKAGE = Path(newsstream.__file__).parent
CONTRACT_DOC = Path(__file__).resolve().parents[2] / "docs" / "contract.md"

# Where the code base spells a reason: a reason= argument or class default, a failed fetch's kind
# (the reason of a feed entry whose page failed), a ticker body's error kind, the runner's
# dead letters and failures, and describe_error's own codes.
EMITTED = (
    r'reason ?= ?"(\w+)"',
    r'FetchError\(\s*"(\w+)"',
    r'TickerFormatError\(\s*"(\w+)"',
    r'_dead\([^,]+,\s*"(\w+)"',
    r'failure = \("(\w+)"',
    r'failure or \("(\w+)"',
)


def _emitted_codes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in EMITTED:
            for code in re.findall(pattern, text):
                found.setdefault(code, set()).add(str(path.relative_to(PACKAGE)))
    for code in re.findall(r'return "(\w+)", ', (PACKAGE / "contract" / "wire.py").read_text(encoding="utf-8")):
        found.setdefault(code, set()).add("contract/wire.py")
    return found


def test_every_reason_the_code_base_emits_is_in_the_closed_set() -> None:
    emitted = _emitted_codes()
    assert {"invalid_json", "empty_page", "timeout", "bad_shape", "store_rejected"} <= emitted.keys()  # the scan works
    assert {code: where for code, where in emitted.items() if code not in DEAD_LETTER_REASONS} == {}


def test_a_dead_letter_refuses_a_reason_outside_the_set() -> None:
    """Before: reason was free text."""
    with pytest.raises(ValidationError):
        wire.dead_letter(b"x", stage="worker", reason="something went wrong", error="e")
    schema = orjson.loads(schema_documents()["dead_letter.v1.json"])
    assert schema["properties"]["reason"]["enum"] == list(DEAD_LETTER_REASONS)


def test_an_unknown_code_on_a_data_error_still_becomes_a_dead_letter() -> None:
    letter = wire.dead_letter_for(b"{}", DataError("odd", reason="not_a_code"), stage="worker")
    assert letter.reason == "processing_error" and "not_a_code" in letter.error


def test_the_contract_documents_every_code() -> None:
    doc = CONTRACT_DOC.read_text(encoding="utf-8")
    assert [code for code in DEAD_LETTER_REASONS if f"`{code}`" not in doc] == []
