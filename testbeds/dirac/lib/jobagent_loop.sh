#!/usr/bin/env bash
# The testbed's "pilot": a WorkloadManagement/JobAgent with the InProcess CE, identity = host
# certificate (GenericPilot), started by up.sh in the environment of a pilot-<vo>-<n> role;
# the argument (<vo>-<n>) only labels the process, so that its pid file can be checked.
# A real pilot ends by design (no CPU time left, repeated failures) and the site director
# sends a new one. Here the agent stops after StopAfterFailedMatches cycles without a job
# (DIRAC's JobAgent waits longer after every miss, so an agent left idle would react to a
# new job only after minutes) and this loop starts a fresh one at once, so any job submitted
# later still runs without anyone acting. down.sh stops the whole process group.
set -uo pipefail
while :; do
    echo "=== jobagent_loop: starting JobAgent at $(date -u +%FT%TZ)"
    dirac-agent WorkloadManagement/JobAgent -o MaxCycles=0
    echo "=== jobagent_loop: JobAgent exited with $? at $(date -u +%FT%TZ); restarting in 1 s"
    sleep 1
done
