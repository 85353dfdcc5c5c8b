"""Shared fixtures. Tests run on 2 CPU cores: small models, small inputs, one thread where timing does not matter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("MOBILEONE_BENCH_NO_COLOR", "1")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield


CONSOLE_WIDTH = 200


@pytest.fixture
def runner():
    """A CliRunner on a console of fixed width, whatever the terminal (or ``COLUMNS``) of the machine running the
    tests: click's help and rich's stderr console read the terminal's width, and a test must not depend on it."""
    from click.testing import CliRunner

    class FixedWidthRunner(CliRunner):
        def invoke(self, cli, args=None, input=None, env=None, **kwargs):  # noqa: A002 - click's name
            env = {"COLUMNS": str(CONSOLE_WIDTH), "LINES": "50", **(env or {})}
            kwargs.setdefault("terminal_width", CONSOLE_WIDTH)
            return super().invoke(cli, args, input=input, env=env, **kwargs)

    return FixedWidthRunner()


def flat(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space: assert on tokens, not layout."""
    return " ".join(text.split())


@pytest.fixture
def cli():
    from mobileone_bench.cli import cli as group

    return group


def randomize_bn(model, seed: int = 0) -> None:
    """Give BatchNorm layers non-trivial affine parameters and statistics (folding must use all four)."""
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


UNAVAILABLE = "notbuilt-x1"  # the name of the test-only unavailable model (``unavailable_model``)


@pytest.fixture
def unavailable_model():
    """Register ``notbuilt-x1``, a name the tool knows but cannot build (every paper row is buildable now), for the
    tests of the unavailable path; removed again afterwards. Returns its name."""
    from mobileone_bench.models import registry

    key = registry._key(UNAVAILABLE)
    registry.register_unavailable(UNAVAILABLE, paper_name="NotBuilt-X1",
                                  reason="no implementation of NotBuilt in timm, torchvision or this tool")
    yield UNAVAILABLE
    registry._ALIASES.pop(key, None)


class QuietSampler:
    """A contention sampler that reads every timed block as uncontended (see :func:`quiet_machine`)."""

    def __init__(self, *a, **kw):
        pass

    def start(self):
        return None

    def stop(self, token):
        return {"seconds": 0.01, "other_cpu": 0.0, "other_cpu_s": 0.0, "steal": 0.0, "contended": False,
                "load_1m_start": 0.0, "load_1m_end": 0.0, "mhz_start": None, "mhz_end": None}


@pytest.fixture
def quiet_machine(monkeypatch):
    """Every timed block reads as uncontended, whatever else this machine runs meanwhile (the analysis leaves
    contended records out, which would make these tests depend on the machine's load)."""
    from mobileone_bench.devices import _contention

    monkeypatch.setattr(_contention, "ContentionSampler", QuietSampler)
