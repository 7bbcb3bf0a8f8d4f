"""the pipelines' step cache

Revision ID: 0007_pipeline_cache
Revises: 0006_pipelines
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_pipeline_cache"
down_revision = "0006_pipelines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_cache",
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("step", sa.String(length=256), nullable=False),
        sa.Column("output_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cache_key", "run_id", name=op.f("pk_pipeline_cache")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_cache")
