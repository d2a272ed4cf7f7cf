"""``python -m flotilla`` runs the CLI."""

from flotilla.cli.main import main

main()
