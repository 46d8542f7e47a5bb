"""Layer 12, the command line: ``genrelib <command>``, one module per group of commands.

``data`` (demo-data, scan, features), ``training`` (train, sweep, ensemble, train-reference), ``inference``
(evaluate, predict, personal-test), ``notebooks`` (notebook, run-all), ``app`` (the web page); ``run`` builds the
parser and runs a command. Every command calls the same public functions the notebooks call.
"""

from genrelib.cli.run import build_parser, main

__all__ = ["build_parser", "main"]
