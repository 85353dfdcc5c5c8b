"""The tool's own architectures, one module per family, each table of its paper as data.

Importing this package registers them (each family calls :func:`~mobileone_bench.models.registry.register_model` as
it is imported). Layers and helpers more than one family uses live once in :mod:`._layers` (``make_divisible``,
conv-BN, Squeeze-Excite, the BatchNorm1d fold of classifier heads); the dynamic activations in :mod:`.activations`.
"""

from mobileone_bench.models.archs import mobileone  # noqa: F401  (registers mobileone_s0..s4, mobileone_mu0..mu2)
from mobileone_bench.models.archs import ablation  # noqa: F401
from mobileone_bench.models.archs import mobilenext  # noqa: F401  (mobilenext-x1.0, -x1.4)
from mobileone_bench.models.archs import mobileformer  # noqa: F401  (mobileformer-52, -96)
from mobileone_bench.models.archs import micronet  # noqa: F401  (micronet-m1..m3)
