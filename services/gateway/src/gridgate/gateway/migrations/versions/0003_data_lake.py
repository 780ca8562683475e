"""The data lake: job inputs, the job's Rucio dataset, each result's DID and location.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("inputs", sa.JSON()))
        batch.add_column(sa.Column("data_dataset", sa.String(512)))
        batch.create_index("ix_jobs_destruction", ["destruction"])
    with op.batch_alter_table("job_results") as batch:
        batch.add_column(sa.Column("did", sa.String(512)))
        batch.add_column(sa.Column("location", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("job_results") as batch:
        batch.drop_column("location")
        batch.drop_column("did")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_destruction")
        batch.drop_column("data_dataset")
        batch.drop_column("inputs")
