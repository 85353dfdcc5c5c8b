"""Modules that are also the API function of the same name: ``mobileone_bench.export`` and ``mobileone_bench.reparam``.

The API's ``export()`` and ``reparam()`` share their names with the ``export`` package and the ``reparam`` module.
Python's import system sets ``mobileone_bench.export`` to the subpackage as soon as anything imports it, which
would leave a notebook user holding a module that "is not callable". Instead, these two modules are callable:
``mb.export(...)`` is :func:`mobileone_bench.api.export` and ``mb.reparam(...)`` is :func:`mobileone_bench.api.reparam`,
whichever was imported first, and ``from mobileone_bench.export import ...`` works as for any module.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["make_callable"]


class _CallableModule(types.ModuleType):
    """A module whose call is the API function of its name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.api_function()(*args, **kwargs)

    def api_function(self) -> Any:
        from mobileone_bench import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])


def make_callable(module_name: str) -> None:
    """Make ``sys.modules[module_name]`` callable as the API function of its last name."""
    module = sys.modules[module_name]
    if not isinstance(module, _CallableModule):
        module.__class__ = _CallableModule
