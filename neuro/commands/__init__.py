"""One module per ``neuro`` subcommand (see :mod:`neuro.cli`)."""
