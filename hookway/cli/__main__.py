"""``python -m hookway.cli``: the same as the ``hookway`` command."""

from hookway.cli.app import main

main()
