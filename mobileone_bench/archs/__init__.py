"""The tool's own architectures. Importing this package registers them (see :mod:`mobileone_bench.registry`)."""

from mobileone_bench.archs import mobileone  # noqa: F401  (registers mobileone_s0..s4, mobileone_mu0..mu2)
from mobileone_bench.archs import ablation  # noqa: F401
