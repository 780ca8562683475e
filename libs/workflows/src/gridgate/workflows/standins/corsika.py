"""CORSIKA stand-in: write ``DAT<NNNNNN>.json`` with input cards and pseudo-random showers.

The run number is ``--run`` plus the task index from ``GRIDGATE_TASK_INDEX``. Showers are
drawn from a generator seeded by the seeds and the run number: energies from a power law,
directions uniformly within the given ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridgate.workflows.standins._common import parse_bool, power_law, task_index, write_json

FORMAT = "gridgate-standin/corsika/1"
BUILD_ENV = "CONCORDIA_BUILD"
"""Names the image's build options file (set by the CONCORDIA image recipe)."""
IMAGE_ENV = "GRIDGATE_IMAGE"
"""The image reference (``registry/repository@sha256:…``) the task runs in, set by the facility."""
# CORSIKA particle codes (PRMPAR): nuclei are 100 * A + Z.
PARTICLE_CODES = {
    "gamma": 1,
    "electron": 3,
    "proton": 14,
    "helium": 402,
    "nitrogen": 1407,
    "iron": 5626,
}
RECORDED_SHOWERS = 100
# Rough Cherenkov yield of the stand-in, photons per GeV of primary energy.
PHOTONS_PER_GEV = 100.0


def output_name(run_number: int) -> str:
    """Return the file name of a run.

    Parameters
    ----------
    run_number
        The run number.

    Returns
    -------
    str
        ``DAT<run number, 6 digits>.json``, after CORSIKA's ``DAT<run>`` files.
    """
    return f"DAT{run_number:06d}.json"


def input_cards(args: argparse.Namespace, run_number: int) -> list[str]:
    """Return the CORSIKA input cards equivalent to the options.

    Parameters
    ----------
    args
        Parsed options.
    run_number
        This task's run number.

    Returns
    -------
    list of str
        One card per line, as in a CORSIKA steering file.
    """
    cards = [
        f"RUNNR {run_number}",
        f"NSHOW {args.showers}",
        f"PRMPAR {PARTICLE_CODES[args.primary]}",
        f"ESLOPE {args.energy_slope:g}",
        f"ERANGE {args.energy_min:g} {args.energy_max:g}",
        f"THETAP {args.zenith_min:g} {args.zenith_max:g}",
        f"PHIP {args.azimuth_min:g} {args.azimuth_max:g}",
    ]
    cards += [f"SEED {seed} 0 0" for seed in args.seeds]
    if args.cherenkov_output:
        cards += [
            f"CERSIZ {args.bunch_size:g}",
            f"CWAVLG {args.wavelength_min:g} {args.wavelength_max:g}",
            "CERFIL T",
        ]
    return [*cards, "EXIT"]


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
        The content of the output file.
    """
    seed = f"corsika:{','.join(map(str, args.seeds))}:{run_number}"
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    band = (args.wavelength_max - args.wavelength_min) / 460.0  # relative to 240..700 nm
    showers: list[dict[str, Any]] = []
    total_energy = 0.0
    for number in range(1, args.showers + 1):
        energy = power_law(rng.random(), args.energy_min, args.energy_max, args.energy_slope)
        zenith = args.zenith_min + rng.random() * (args.zenith_max - args.zenith_min)
        azimuth = args.azimuth_min + rng.random() * (args.azimuth_max - args.azimuth_min)
        total_energy += energy
        if number <= RECORDED_SHOWERS:
            shower: dict[str, Any] = {
                "shower": number,
                "energy_gev": round(energy, 6),
                "zenith_deg": round(zenith, 4),
                "azimuth_deg": round(azimuth, 4),
            }
            if args.cherenkov_output:
                photons = energy * PHOTONS_PER_GEV * band
                shower["cherenkov_bunches"] = int(photons / args.bunch_size)
            showers.append(shower)
        if number % max(args.showers // 10, 1) == 0:
            print(f"run {run_number}: {number}/{args.showers} showers", flush=True)
    document: dict[str, Any] = {
        "format": FORMAT,
        "standin": True,
        "run_number": run_number,
        "task_index": task_index(),
        "primary": args.primary,
        "seeds": args.seeds,
        "seed": seed,
        "input_cards": input_cards(args, run_number),
        "cherenkov_output": args.cherenkov_output,
        "shower_count": args.showers,
        "total_energy_gev": round(total_energy, 3),
        "showers": showers,
    }
    build = image_build()
    if build is not None:
        document["image_build"] = build
    if os.environ.get(IMAGE_ENV):
        document["image"] = os.environ[IMAGE_ENV]
    return document


def image_build() -> dict[str, Any] | None:
    """The build options of the container image this runs in, if it runs in one.

    Returns
    -------
    dict or None
        The JSON file named by ``CONCORDIA_BUILD`` (written by the image recipe), or None.
    """
    path = os.environ.get(BUILD_ENV)
    if not path or not Path(path).is_file():
        return None
    loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


def _seeds(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


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
    parser = argparse.ArgumentParser(prog="corsika", description=__doc__)
    parser.add_argument("--run", type=int, default=1)
    parser.add_argument("--showers", type=int, default=10)
    parser.add_argument("--primary", choices=sorted(PARTICLE_CODES), default="gamma")
    parser.add_argument("--energy-min", type=float, required=True)
    parser.add_argument("--energy-max", type=float, required=True)
    parser.add_argument("--energy-slope", type=float, default=-2.0)
    parser.add_argument("--zenith-min", type=float, default=20.0)
    parser.add_argument("--zenith-max", type=float, default=20.0)
    parser.add_argument("--azimuth-min", type=float, default=0.0)
    parser.add_argument("--azimuth-max", type=float, default=360.0)
    parser.add_argument("--seeds", type=_seeds, default=[1, 2, 3, 4])
    parser.add_argument("--cherenkov-output", type=parse_bool, default=True)
    parser.add_argument("--bunch-size", type=float, default=5.0)
    parser.add_argument("--wavelength-min", type=float, default=240.0)
    parser.add_argument("--wavelength-max", type=float, default=700.0)
    args = parser.parse_args(argv)
    if not 0 < args.energy_min <= args.energy_max:
        parser.error("need 0 < --energy-min <= --energy-max")
    if args.showers < 1 or args.bunch_size <= 0:
        parser.error("--showers and --bunch-size must be positive")

    run_number = args.run + task_index()
    print(f"run {run_number}: simulating {args.showers} {args.primary} showers", flush=True)
    path = Path(output_name(run_number))
    write_json(path, simulate(args, run_number))
    print(f"run {run_number}: wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
