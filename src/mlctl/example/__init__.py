"""The example repository mlctl ships: churn prediction on synthetic data.

- :mod:`mlctl.example.generator`: deterministic synthetic data (customer activity snapshots,
  churn labels, delayed outcomes).
- :mod:`mlctl.example.init`: ``mlctl init`` (copy the template in ``files/`` and generate its
  data) and ``ensure_example_data`` (used by ``make demo``).

Importing this package is cheap; numpy and pandas load only when data is generated.
"""
