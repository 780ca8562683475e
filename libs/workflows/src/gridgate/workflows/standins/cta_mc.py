"""CTA Monte Carlo stand-in: write ``run<NNNNNN>.simtel.json`` for one production job.

The run number is ``--first-run`` plus the task index from ``GRIDGATE_TASK_INDEX``; the
shower energies come from a generator seeded by the run number and the primary, so a run is
reproducible.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridgate.workflows.standins._common import power_law, task_index, write_json

FORMAT = "gridgate-standin/cta-mc/1"
SPECTRAL_INDEX = -2.0
SAMPLE_SIZE = 10
# Energy ranges (TeV) of the CTA prod5 simulations for each primary.
ENERGY_RANGE_TEV = {"gamma": (0.003, 330.0), "electron": (0.003, 330.0), "proton": (0.004, 600.0)}


def output_name(run_number: int) -> str:
    """Return the file name of a run.

    Parameters
    ----------
    run_number
        The run number.

    Returns
    -------
    str
        ``run<run number, 6 digits>.simtel.json``.
    """
    return f"run{run_number:06d}.simtel.json"


def simulate(args: argparse.Namespace, run_number: int) -> dict[str, Any]:
    """Draw the pseudo-random showers of a run and describe it.

    Parameters
    ----------
    args
        Parsed options.
    run_number
        This task's run number.

    Returns
    -------
    dict
        The content of the run file.
    """
    seed = f"cta-mc:{run_number}:{args.primary}"
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    low, high = ENERGY_RANGE_TEV[args.primary]
    sample: list[float] = []
    lowest, highest = high, low
    step = max(args.showers // 10, 1)
    for number in range(1, args.showers + 1):
        energy = power_law(rng.random(), low, high, SPECTRAL_INDEX)
        lowest, highest = min(lowest, energy), max(highest, energy)
        if number <= SAMPLE_SIZE:
            sample.append(round(energy, 6))
        if number % step == 0:
            print(f"run {run_number}: {number}/{args.showers} showers", flush=True)
    return {
        "format": FORMAT,
        "standin": True,
        "run_number": run_number,
        "task_index": task_index(),
        "primary": args.primary,
        "array_layout": args.array,
        "he_interaction_model": args.he_model,
        "le_interaction_model": args.le_model,
        "showers": args.showers,
        "seed": seed,
        "spectral_index": SPECTRAL_INDEX,
        "energy_range_tev": [low, high],
        "energy_sample_tev": sample,
        "energy_min_tev": round(lowest, 6),
        "energy_max_tev": round(highest, 6),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program.

    Parameters
    ----------
    argv
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        0 on success.
    """
    parser = argparse.ArgumentParser(prog="cta_mc", description=__doc__)
    parser.add_argument("--showers", type=int, required=True)
    parser.add_argument("--first-run", type=int, required=True)
    parser.add_argument("--primary", choices=sorted(ENERGY_RANGE_TEV), default="gamma")
    parser.add_argument("--he-model", required=True)
    parser.add_argument("--le-model", required=True)
    parser.add_argument("--array", required=True)
    args = parser.parse_args(argv)
    if args.showers < 1:
        parser.error("--showers must be at least 1")

    run_number = args.first_run + task_index()
    print(f"run {run_number}: simulating {args.showers} {args.primary} showers", flush=True)
    path = Path(output_name(run_number))
    write_json(path, simulate(args, run_number))
    print(f"run {run_number}: wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
