#!/usr/bin/env bash
# Run outcomes.py (a failing, a killed and a chatty job: what DIRAC reports) against the
# testbed.   outcomes.sh [--user alice]
exec "$(dirname "${BASH_SOURCE[0]}")/lib/run_script.sh" outcomes.py "$@"
