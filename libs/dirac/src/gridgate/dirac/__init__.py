"""The only code that talks to DIRAC.

DIRAC 8 pins libraries that clash with ours (SQLAlchemy, tornado, M2Crypto), so DIRAC runs in
its own virtual environment behind a *bridge*: a long-lived process started with DIRAC's Python
(:mod:`gridgate.dirac.bridge_main`, standard library plus DIRAC only) that answers JSON
requests on its standard input. :class:`~gridgate.dirac.bridge.DiracBridge` is our side of it.
"""
