"""``python -m genrelib.cli``: the same as the ``genrelib`` command."""

import sys

from genrelib.cli.main import main

sys.exit(main())
