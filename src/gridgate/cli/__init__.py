"""The ``gridgate`` command line: the development stack, tokens, and the demo."""
