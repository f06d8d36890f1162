"""The ``sqlsage`` command line: the one layer that sees all the others.

Each ``*_commands`` module adds its own subcommands with ``register(subparsers)``; :mod:`cli.main`
lists those modules and dispatches. :mod:`cli.options` holds the options every command shares.
"""
