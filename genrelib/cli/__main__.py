"""``python -m genrelib.cli``: the same as the ``genrelib`` command."""

import sys

from genrelib.cli.run import main

sys.exit(main())
