"""The state (floor 2): the state document, its backends (local file, S3) and their locks.
Imports only the ground floors (errors, files, s3client).

Entry points: :class:`State` (the document), :class:`StateBackend` (read / write / lock),
:class:`LocalBackend`, :func:`persist` (the checkpoint after every action) and :func:`locked`.
"""

from mlctl.state.backend import LockInfo, StateBackend, locked, persist
from mlctl.state.document import GitInfo, State
from mlctl.state.local import LocalBackend

__all__ = ["GitInfo", "LocalBackend", "LockInfo", "State", "StateBackend", "locked", "persist"]
