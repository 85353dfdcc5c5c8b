"""The tool's own architectures. Importing this package registers them (see :mod:`mobileone_bench.models.registry`)."""

from mobileone_bench.models.archs import mobileone  # noqa: F401  (registers mobileone_s0..s4, mobileone_mu0..mu2)
from mobileone_bench.models.archs import ablation  # noqa: F401
from mobileone_bench.models.archs import mobilenext  # noqa: F401  (mobilenext-x1.0, -x1.4)
from mobileone_bench.models.archs import mobileformer  # noqa: F401  (mobileformer-52, -96)
from mobileone_bench.models.archs import micronet  # noqa: F401  (micronet-m1..m3)
