"""GitOps (floor 3): git facts for state records, the files a change touched, and YAML write-back.

Importing this package is cheap: GitPython and ruamel.yaml are imported inside the functions.
"""

from mlctl.gitops.git import commit_files, current_actor, git_info
from mlctl.gitops.writeback import set_stage_pin

__all__ = ["commit_files", "current_actor", "git_info", "set_stage_pin"]
