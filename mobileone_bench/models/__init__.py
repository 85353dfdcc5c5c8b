"""Models: the registry (a leaf), the outside zoos, the tool's own architectures, the paper's aliases and zoos, the
factory and the checkpoint loader.

Importing this package fills the registry, as timm's ``models/__init__`` does: the outside zoos register their
prefixes (:mod:`~mobileone_bench.models.sources`, ``timm:`` and ``torchvision:``, without importing either), each
family of :mod:`~mobileone_bench.models.archs` registers its models as it is imported (which imports torch), and
:mod:`~mobileone_bench.models.zoo` registers the paper's aliases and the named zoos.
:func:`~mobileone_bench.models.factory.create_model` builds a model from a name.
"""

from mobileone_bench.models import sources  # noqa: F401  (registers the timm: and torchvision: prefixes)
from mobileone_bench.models import archs  # noqa: F401  (registers the own families)
from mobileone_bench.models import zoo  # noqa: F401  (registers the paper's aliases and the named zoos)
