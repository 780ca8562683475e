"""Build every service image once ahead of the tests, so the deploy tests' own builds of the
same Dockerfile and context come from the engine's layer cache.

CI runs this in the background while the demo runs and the DIRAC testbed installs:
``python -m gridgate.testing.warm_images``. It expects the Docker testbed to be up (it starts
it if not, and then leaves it running for the tests).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from gridgate.testing.docker import build_service_images, docker_testbed


def main() -> None:
    os.environ.setdefault("GRIDGATE_DOCKER_KEEP", "1")
    with contextmanager(docker_testbed)() as testbed:
        images = build_service_images(testbed)
    for step, seconds in images.timings.items():
        print(f"{step}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
