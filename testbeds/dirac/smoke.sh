#!/usr/bin/env bash
# Run smoke.py (proxy, submit, JobAgent runs it, Done, output sandbox) against the testbed.
#   smoke.sh [smoke.py options]   e.g. smoke.sh --user bob
exec "$(dirname "${BASH_SOURCE[0]}")/lib/run_script.sh" smoke.py "$@"
