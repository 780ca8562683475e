"""Stand-in programs run by workflows whose real executables are not yet packaged.

Each is a stdlib-only command (``python -m gridgate.workflows.standins.<name>``) that reads
its task index from ``GRIDGATE_TASK_INDEX``, writes deterministic output files into the
current directory and prints progress to stdout.
"""
