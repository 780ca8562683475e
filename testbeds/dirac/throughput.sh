#!/usr/bin/env bash
# Run throughput.py (one parametric job of N short tasks, submit -> all Done) against the
# testbed.   throughput.sh [--tasks 19] [--user alice] [--sleep 1]
exec "$(dirname "${BASH_SOURCE[0]}")/lib/run_script.sh" throughput.py "$@"
