"""``python -m trainops.cli``: the same as the ``trainops`` command."""

from trainops.cli.main import main

main()
