"""The list of commands the ``mobileone-bench`` group exposes (one place to add a command)."""

from mobileone_bench.cli.models import list_cmd, profile_cmd, reparam_cmd

ALL = [list_cmd, profile_cmd, reparam_cmd]
