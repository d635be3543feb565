"""The example repository mlctl ships (floor 3): churn prediction on synthetic data.

- :mod:`mlctl.example.generator`: deterministic synthetic data (customer activity snapshots,
  churn labels, delayed outcomes) whose timeline ends at an as-of day (default: today), and
  the shifted population of the tour.
- :mod:`mlctl.example.init`: ``mlctl init`` (copy the template in ``files/`` and generate its
  data) and ``ensure_example_data`` (used by ``make demo``).
- :mod:`mlctl.example.traffic`: ``mlctl demo traffic`` (requests to a running server, their
  delayed labels for the quality monitor, and the shifted customers as new training data).

Importing this package is cheap; numpy and pandas load only when data is generated.
"""
