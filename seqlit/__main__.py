"""``python -m seqlit`` is the ``seqlit`` command."""

from seqlit.run.cli import main

main()
