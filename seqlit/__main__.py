"""``python -m seqlit`` is the ``seqlit`` command."""

from seqlit.run.entry import main

main()
