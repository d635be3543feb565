"""mlctl: a Terraform-style GitOps control plane for machine learning.

The package is layered in one direction: ``spec`` and ``state`` (what is wanted, what is)
-> ``plan`` (the difference) -> ``engine`` (making it so through ``providers`` and ``ml``)
-> ``cli`` (click wiring only). Importing :mod:`mlctl` is cheap: no scikit-learn, pandas,
FastAPI or boto3 are imported until a command needs them.
"""

__version__ = "0.1.0"
