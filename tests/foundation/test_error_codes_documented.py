"""Every error code the code base can raise is listed in docs/errors.md."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_PATTERNS = [
    re.compile(r'\bcode\s*=\s*"([A-Z][A-Z0-9_]+)"'),  # raise X(..., code="...") and class attributes
    re.compile(r'ApiError\(\s*\d+\s*,\s*"([A-Z][A-Z0-9_]+)"'),
    re.compile(r'envelope\(\s*\d+\s*,\s*"([A-Z][A-Z0-9_]+)"'),
]


def test_every_error_code_is_documented():
    codes = set()
    for path in (ROOT / "backend").rglob("*.py"):
        text = path.read_text()
        for pattern in CODE_PATTERNS:
            codes.update(pattern.findall(text))
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "errors.md").read_text()))
    assert codes, "found no codes: the patterns are wrong"
    missing = sorted(codes - documented)
    assert not missing, f"docs/errors.md lacks: {missing}"
