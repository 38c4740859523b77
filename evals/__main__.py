"""``python -m evals``: the ``evals`` command without the console script (e.g. a GPU worker's own interpreter)."""

from evals.cli import main

main()
