"""Models: the registry (a leaf), the tool's own architectures, the paper's aliases and zoos, the factory.

Importing this package registers every family (each ``archs/`` module registers itself as it is imported, as timm's
``models/__init__`` does) and the paper's aliases and zoos (:mod:`~mobileone_bench.models.zoo`). Neither imports
torch: a family's layers load when a model is built.
"""

from mobileone_bench.models import archs  # noqa: F401  (registers the own families)
from mobileone_bench.models import zoo  # noqa: F401  (registers the paper's aliases and the named zoos)
