"""``python -m genrelib``: the same as the ``genrelib`` command."""

import sys

from genrelib.cli import main

sys.exit(main())
