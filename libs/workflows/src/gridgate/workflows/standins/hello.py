"""Hello World: greet a name, write ``hello.txt``, optionally sleep and fail on purpose.

Usage: ``python -m gridgate.workflows.standins.hello --name=world --repeat=1``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from gridgate.workflows.standins._common import task_index

OUTPUT = "hello.txt"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program.

    Parameters
    ----------
    argv
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        The requested exit code.
    """
    parser = argparse.ArgumentParser(prog="hello", description=__doc__)
    parser.add_argument("--name", default="world")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sleep-s", type=float, default=0.0)
    parser.add_argument("--exit-code", type=int, default=0)
    args = parser.parse_args(argv)

    greeting = f"Hello, {args.name}!"
    lines = [greeting] * max(args.repeat, 0)
    for line in lines:
        print(line, flush=True)
    Path(OUTPUT).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    print(f"task {task_index()}: wrote {OUTPUT}", flush=True)
    if args.sleep_s > 0:
        print(f"sleeping {args.sleep_s:g} s", flush=True)
        time.sleep(args.sleep_s)
    if args.exit_code:
        print(f"exiting with code {args.exit_code} as asked", file=sys.stderr, flush=True)
    else:
        print("done", flush=True)
    return int(args.exit_code)


if __name__ == "__main__":
    sys.exit(main())
