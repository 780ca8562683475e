"""How gridgate's workers reach one DIRAC installation: configuration, not code.

A real facility (CTADIRAC, EGI's DIRAC) and the testbed differ only in these values: the
DIRAC client's Python, its root (``etc/dirac.cfg`` names the setup, the configuration server
and the robot certificate gridgate's services use), and the trusted CAs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gridgate.dirac.bridge import DiracEnvironment


class DiracConnection(BaseModel):
    """One DIRAC facility's client set-up, as the workers' settings give it (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    python: Path = Field(description="The DIRAC client's Python (its own virtual environment).")
    root: Path = Field(description="DIRAC_ROOT_PATH: etc/dirac.cfg with setup, CS and robot.")
    cert_dir: Path = Field(description="X509_CERT_DIR: the CAs (and CRLs) DIRAC trusts.")
    options: tuple[str, ...] = Field(
        default=(), description="Extra DIRAC command-line options, such as -o Section/Key=Value."
    )
    bridge_processes: int = Field(
        default=2, ge=1, le=32, description="DIRAC bridge processes (calls served at once)."
    )
    status_batch: int = Field(
        default=1000, ge=1, description="Jobs asked for in one bulk status call."
    )

    def environment(self) -> DiracEnvironment:
        root = str(self.root)
        return DiracEnvironment(
            python=self.python,
            env={
                "DIRAC_ROOT_PATH": root,
                "DIRAC": root,
                "X509_CERT_DIR": str(self.cert_dir),
                "X509_VOMS_DIR": str(self.cert_dir),
            },
            options=list(self.options),
        )
