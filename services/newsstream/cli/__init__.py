"""The ``newsstream`` command line (:mod:`newsstream.cli.main` composes it)."""
