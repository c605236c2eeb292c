"""The committed bundle: within its size budget, rebuilt from the source, and clean."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import penchant.tracker_js

TRACKER_DIR = Path(penchant.tracker_js.__file__).parent
SOURCE = TRACKER_DIR / "tracker.js"
BUNDLE = TRACKER_DIR / "tracker.min.js"
#: The whole minified bundle after gzip -9, in bytes.
GZIP_BUDGET = 1200


def _skip_or_fail(reason: str) -> None:
    # CI installs node and the pinned minifier; there a missing tool is a failure.
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def test_bundle_gzipped_size_within_budget() -> None:
    size = len(gzip.compress(BUNDLE.read_bytes(), 9))
    assert size <= GZIP_BUDGET, f"tracker.min.js is {size} bytes gzipped; budget {GZIP_BUDGET}"


def test_bundle_is_built_from_current_source() -> None:
    node = shutil.which("node")
    if node is None:
        _skip_or_fail("node is not installed: cannot rebuild the tracker bundle")
    if not (TRACKER_DIR / "node_modules" / "terser" / "package.json").exists():
        _skip_or_fail("the pinned minifier is missing: run `npm ci` in penchant/tracker_js")
    result = subprocess.run(
        [str(node), "build.mjs", "--stdout"],
        cwd=TRACKER_DIR,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout, "the build printed nothing"
    assert result.stdout == BUNDLE.read_bytes(), (
        "tracker.min.js is stale: run `npm ci && npm run build` in penchant/tracker_js"
    )


def test_minifier_is_pinned_to_an_exact_version() -> None:
    import json

    package = json.loads((TRACKER_DIR / "package.json").read_text())
    version = package["devDependencies"]["terser"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"terser pinned loosely: {version!r}"
    lock = json.loads((TRACKER_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/terser"]["version"] == version


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"\bdocument\.cookie\b|\.cookie\s*=", "the script sets no cookie"),
        (r"\blocalStorage\b|\bsessionStorage\b|\bindexedDB\b", "no stored identifiers"),
        (r"\bsetInterval\b|\brequestAnimationFrame\b", "nothing runs while the visitor is idle"),
        (
            r"getBoundingClientRect|getClientRects|offset(Width|Height|Top|Left)"
            r"|client(Width|Height)|scroll(Top|Height)|getComputedStyle",
            "no layout reads",
        ),
        (r"querySelectorAll|getElementsBy", "no per-element work"),
        (r"\beval\b|new Function|\bimport\(|https?://", "no third-party or dynamic code"),
    ],
)
def test_source_and_bundle_avoid(pattern: str, why: str) -> None:
    for path in (SOURCE, BUNDLE):
        code = path.read_text()
        if path == SOURCE:
            # The header comment shows the tag; only code counts.
            code = re.sub(r"/\*.*?\*/|//[^\n]*", "", code, flags=re.S)
        match = re.search(pattern, code)
        assert match is None, f"{path.name}: {match.group(0) if match else ''!r} ({why})"


def test_readme_states_the_current_size() -> None:
    readme = TRACKER_DIR.parent.parent / "README.md"
    if not readme.exists():
        pytest.skip("no README.md next to the package (installed elsewhere)")
    match = re.search(
        r"`tracker\.min\.js` is ([\d,]+) bytes, ([\d,]+) bytes after `gzip -9`", readme.read_text()
    )
    assert match, "README's tracking script section does not state the bundle size"
    data = BUNDLE.read_bytes()
    stated = (int(match.group(1).replace(",", "")), int(match.group(2).replace(",", "")))
    assert stated == (len(data), len(gzip.compress(data, 9))), "update the size in README.md"
