#!/usr/bin/env python3
"""Runs one gridgate task on a grid worker node: ``gridgate_task.py <task index>``.

The task's argument vector and environment come from ``tasks.json`` (in the input sandbox),
never from the JDL, and run without a shell: user parameters cannot inject commands. The
exit code of the task is the exit code of this wrapper, which DIRAC reports.
Standard library only: it runs with whatever Python 3 the worker node has.
"""

import json
import os
import subprocess
import sys


def main() -> int:
    index = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with open("tasks.json", encoding="utf-8") as handle:
        tasks = json.load(handle)
    task = tasks[index]
    argv = [sys.executable if part == "{python}" else part for part in task["argv"]]
    env = dict(os.environ, **task.get("env", {}))
    env["GRIDGATE_TASK_INDEX"] = str(index)
    print(f"gridgate task {index} of {len(tasks)}: {argv[0]}", flush=True)
    try:
        return subprocess.call(argv, env=env)
    except OSError as exc:
        print(f"gridgate: cannot start {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
