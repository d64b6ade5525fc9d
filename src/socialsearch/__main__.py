"""``python -m socialsearch`` runs the CLI."""

from .cli import main

main()
