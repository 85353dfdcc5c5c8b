"""iPhone and Mac: the Swift harness in ``ios_harness/`` measures; this package drives it and reads what it reports,
as plain values (harness runs, devices, command lines). Records are made by the phone executor,
:mod:`mobileone_bench.pipeline.phone`, through :mod:`mobileone_bench.pipeline.recording`.

Section 3.5 of the MobileOne paper: load the model, preallocate the input, run once, then time 1000 runs and report
the minimum, each run a full round trip of ``MLModel.prediction(from:)``. The harness does exactly that and keeps
every sample.

One module per idea:

* :mod:`~mobileone_bench.devices.apple.report`: the versioned harness report (schema, reading files and logs of
  ``MOBILEONE_BENCH_REPORT {json}`` lines, merging them into runs), the run configuration, what a result says (its
  device conditions, its summary against its samples);
* :mod:`~mobileone_bench.devices.apple.commands`: every external command line (``xcodebuild``, ``devicectl``,
  ``coremlcompiler``, ``xcresulttool``, ``swift``, ``sysctl``) and :func:`~mobileone_bench.devices.apple.commands.run`,
  the one wrapper that runs them;
* :mod:`~mobileone_bench.devices.apple.destinations`: the iPhones ``devicectl`` lists, and the choice of one, several
  or all of them from ``--destination``;
* :mod:`~mobileone_bench.devices.apple.xcodebuild`: compiling and staging models into the app, ``xcodebuild test`` on
  one phone or several at once, and collecting each phone's runs (marked lines, result bundle, app container);
* :mod:`~mobileone_bench.devices.apple.mac`: the Mac runner (``swift run mobileone-harness``) or ``coremltools``.
"""

from __future__ import annotations

from mobileone_bench.devices.apple._common import (
    RUNNER_COREMLTOOLS,
    RUNNER_IOS_APP,
    RUNNER_MAC,
    HarnessWarning,
    Progress,
    Warn,
    default_harness_dir,
    default_warn,
    harness_path,
)
from mobileone_bench.devices.apple.destinations import ALL_DEVICES, Device, destination_names

__all__ = ["HarnessWarning", "RUNNER_IOS_APP", "RUNNER_MAC", "RUNNER_COREMLTOOLS", "Warn", "Progress", "default_warn",
           "default_harness_dir", "harness_path", "Device", "ALL_DEVICES", "destination_names"]
