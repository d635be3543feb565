"""mlctl: a Terraform-style GitOps control plane for machine learning.

The package stands on floors, ground first; a package imports only from floors below it
(``tests/test_layers.py`` keeps the table and enforces it):

``errors`` -> ``files``/``s3client`` -> ``spec``/``state`` -> ``ml``/``gitops``/``example``
-> ``providers`` -> ``plan``/``workspace`` -> ``features`` -> ``engine`` -> ``monitor``
-> ``operations`` (the library API) -> ``serving`` -> ``cli`` (click wiring only).

Importing :mod:`mlctl` is cheap: no scikit-learn, pandas, FastAPI or boto3 are imported until
a command needs them.
"""

__version__ = "0.1.0"
