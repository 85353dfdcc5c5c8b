"""The Ray test's node hook (``MOBILEONE_BENCH_NODE_HOOK=tests.cluster_hook:hold``), run on the node before each
measurement: it marks which node measures which model (``<marks>/<model>@<node ip>``), then holds the node's slot
until the test has done what it wanted meanwhile (killed a node) and created ``<marks>/../release``."""

from __future__ import annotations

import os
import time
from pathlib import Path


def hold(model: str, node: dict) -> None:
    marks = Path(os.environ["MOBILEONE_BENCH_TEST_MARKS"])
    (marks / f"{model}@{node['node_ip']}").touch()
    release = marks.parent / "release"
    while not release.exists():  # an event from the test process (another machine's view: no shared memory)
        time.sleep(0.05)
