"""The results store and everything that reads or writes it as a whole.

- :mod:`~mobileone_bench.store.records`: the record (a flat row), its schema, and :class:`ResultsStore` (JSON lines,
  atomic appends under a lock, samples files, the journal of rounds in progress);
- :mod:`~mobileone_bench.store.merging`: the union of several stores and ``merge`` (each record once, nothing
  overwritten);
- :mod:`~mobileone_bench.store.frames`: the store read as pandas frames for the analysis (latest, uncontended...);
- :mod:`~mobileone_bench.store.export`: the store as CSV, Parquet or PyTorch OSS benchmark JSON.
"""
