"""The Ray test's node hook (``MOBILEONE_BENCH_NODE_HOOK=tests.cluster_hook:hold``), run on the node before each
measurement: it marks which node measures which model (``<marks>/<model>@<node ip>``), then holds the node's slot
until the test releases it.

The release is an event, not a timeout: while the test wants the nodes held it listens on the Unix socket
``<marks>/../gate.sock``; the hook connects (a pending connection needs no accept) and blocks in ``recv``; the test
closes the socket once it has done what it wanted meanwhile (killed a node), which resets every pending connection.
With no socket there, nothing is held. A path socket reaches across the test's network namespaces (it is found
through the file system)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

GATE = "gate.sock"


def hold(model: str, node: dict) -> None:
    marks = Path(os.environ["MOBILEONE_BENCH_TEST_MARKS"])
    (marks / f"{model}@{node['node_ip']}").touch()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
        try:
            gate.connect(str(marks.parent / GATE))
        except OSError:  # no gate: the test holds nothing now
            return
        try:
            gate.recv(1)  # returns (or raises ECONNRESET) when the test closes the gate
        except OSError:
            pass
