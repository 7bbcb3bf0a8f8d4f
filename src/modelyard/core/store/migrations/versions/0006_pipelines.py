"""pipelines: trigger state, trigger events and agents

Revision ID: 0006_pipelines
Revises: 0005_datasets
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_pipelines"
down_revision = "0005_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_triggers",
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("trigger", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("armed_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "trigger", name=op.f("pk_pipeline_triggers")),
    )
    op.create_table(
        "pipeline_events",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("trigger", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=512), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("worker_pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_pipeline_events")),
        sa.UniqueConstraint(
            "pipeline",
            "trigger",
            "event_key",
            name=op.f("uq_pipeline_events_pipeline_trigger_event_key"),
        ),
    )
    with op.batch_alter_table("pipeline_events", schema=None) as batch_op:
        batch_op.create_index("ix_pipeline_events_status", ["pipeline", "status"], unique=False)
    op.create_table(
        "pipeline_agents",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("poll_seconds", sa.Float(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("stopped_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_pipeline_agents")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_agents")
    with op.batch_alter_table("pipeline_events", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_events_status")
    op.drop_table("pipeline_events")
    op.drop_table("pipeline_triggers")
