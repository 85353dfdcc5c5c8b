"""``python -m mobileone_bench`` is the same as the ``mobileone-bench`` command."""

from mobileone_bench.cli import main

if __name__ == "__main__":
    main()
