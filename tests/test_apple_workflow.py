"""The macOS workflow (``.github/workflows/macos.yml``) that only GitHub runs: valid against the GitHub workflow
schema ``check-jsonschema`` vendors (as ``.ci/run`` checks it), and holding every check issue 29 asks of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "macos.yml"


def test_the_workflow_passes_the_github_workflow_schema():
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    if not Path(tool).exists():
        pytest.skip("check-jsonschema is not installed (the test extra installs it)")
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_holds_every_check():
    text = WORKFLOW.read_text()
    for fragment in ("runs-on: macos-15", "swift build", "swift test", "xcodegen generate",
                     'build-for-testing -project MobileOneBench.xcodeproj -scheme MobileOneBenchApp',
                     '-destination "generic/platform=iOS Simulator"', '-destination "generic/platform=iOS"',
                     "CODE_SIGNING_ALLOWED=NO", "--format coreml", 'parity["prediction"] is True',
                     "mobileone-harness --models", "MOBILEONE_BENCH_COMPUTE_PLAN", "latency $MODELS --device mac",
                     "MODELS: mobileone_s0 mobileone_s1"):
        assert fragment in text, fragment
