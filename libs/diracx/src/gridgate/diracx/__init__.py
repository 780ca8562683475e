"""The only code that talks to DiracX, the DIRAC 9 line's token-only HTTP API.

Unlike DIRAC 8 (:mod:`gridgate.dirac`, behind a bridge process in DIRAC's own environment),
DiracX is reached over HTTP with the official ``diracx-client`` in our own process, with a
bearer token per call: the job owner's for what acts on their jobs, the robot's (a
JobAdministrator) for bulk status. The rendered tasks, the JDL and the phase
mapping are the DIRAC 8 facility's own (:mod:`gridgate.dirac.jdl`, ``.sandbox``, ``.status``).
"""
