"""The repository explains itself: no tracked file points at documents outside it.

The design's first inputs (a product contract, a description of the original system, a house-style
note) lived beside the repository; their content now lives in docs/ (architecture.md, decisions/,
compatibility.md). A reference to them would send the next engineer to a file they do not have.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "imm-" + "behaviour", "DECI" + "SIONS", "ARCHI" + "TECTURE\\.md"]))


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in names.decode().split("\0") if name]


def test_no_tracked_file_refers_to_documents_outside_the_repository() -> None:
    found = []
    for path in _tracked_text_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # binary files (images, the scale-curve plot) hold no references
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert found == [], "references to documents outside the repository:\n" + "\n".join(found)


def test_the_check_sees_a_reference() -> None:
    assert OUTSIDE.search("see ../" + "shared/spec/" + "DECI" + "SIONS.md §3")
    assert len(_tracked_text_files()) > 100
