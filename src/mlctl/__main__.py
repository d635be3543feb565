"""``python -m mlctl`` runs the CLI."""

from mlctl.cli.main import main

main()
