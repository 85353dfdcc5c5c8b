"""The tool's version: a leaf every module may import (nothing imports the package root for it)."""

__version__ = "0.1.0"
