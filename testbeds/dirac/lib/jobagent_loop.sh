#!/usr/bin/env bash
# The testbed's "pilot": a WorkloadManagement/JobAgent with the InProcess CE, identity = host
# certificate (GenericPilot), started by up.sh in the environment of the pilot-VO role; the
# argument (the VO) only labels the process, so that its pid file can be checked.
# The agent is configured never to stop (FillingModeFlag, huge StopAfter* limits, MaxCycles=0),
# but a real pilot ends by design (no CPU time left, repeated failures): restart it, so any job
# submitted later is still run without anyone acting. down.sh stops the whole process group.
set -uo pipefail
while :; do
    echo "=== jobagent_loop: starting JobAgent at $(date -u +%FT%TZ)"
    dirac-agent WorkloadManagement/JobAgent -o MaxCycles=0
    echo "=== jobagent_loop: JobAgent exited with $? at $(date -u +%FT%TZ); restarting in 2 s"
    sleep 2
done
