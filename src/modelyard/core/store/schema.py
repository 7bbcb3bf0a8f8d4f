"""The metadata schema, as SQLAlchemy Core tables.

This module is the one description of the tables; the Alembic migrations in
``migrations/versions`` create and evolve them, and a test checks that the
migrated database matches this metadata exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "alerts",
    "approval_policies",
    "audit_events",
    "dataset_versions",
    "datasets",
    "deployments",
    "experiment_tags",
    "experiments",
    "feedback",
    "latest_metrics",
    "metadata",
    "metrics",
    "model_aliases",
    "model_approvals",
    "model_assignments",
    "model_version_tags",
    "model_versions",
    "params",
    "pipeline_agents",
    "pipeline_cache",
    "pipeline_events",
    "pipeline_triggers",
    "registered_model_tags",
    "registered_models",
    "run_inputs",
    "runs",
    "tags",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", String(1024), nullable=False),
    Column("lifecycle_stage", String(32), nullable=False, default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column("name", String(250), nullable=False),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(256), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(32), nullable=False, default="active"),
    Column("artifact_uri", String(1024), nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent", "parent_run_id"),
)

params = Table(
    "params",
    metadata,
    Column(
        "run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every point of every metric. The primary key covers the whole point (as MLflow's
# does), which makes a resent batch idempotent: a client that retries after a lost
# response cannot store a point twice.
metrics = Table(
    "metrics",
    metadata,
    Column(
        "run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("value", Float(precision=53), primary_key=True),
    Column("is_nan", Boolean, primary_key=True, default=False),
    # On SQLite the rows live in the primary-key B-tree itself: one tree to update
    # per point instead of a rowid table plus a unique index.
    sqlite_with_rowid=False,
)

# The newest point per (run, key): what search and run listings read, so that a
# filter on `metrics.acc` never scans the full history.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column(
        "run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False, default=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

# Dataset references a run consumed (filled by the data-versioning issue).
run_inputs = Table(
    "run_inputs",
    metadata,
    Column("input_id", Integer, primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("dataset_name", String(256), nullable=False),
    Column("dataset_digest", String(128), nullable=False),
    Column("dataset_uri", String(1024), nullable=True),
    Column("context", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_run_inputs_run", "run_uuid"),
)

# Who changed what, when, with the state before and after (JSON text).
audit_events = Table(
    "audit_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("entity_id", String(256), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Index("ix_audit_entity", "entity_type", "entity_id"),
)

# -- model registry ------------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=True),
    # The highest version number ever given: numbers are never reused, so the
    # history and the audit log never name two different versions alike.
    Column("last_version", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# One row per registered version. `source` is what the user registered (runs:/... or
# a storage URL); `artifact_uri` is where the package's files are. The signature,
# a metrics snapshot of the source run and its dataset inputs are copied at
# registration, so a version stays self-describing even if the run is deleted.
model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("source", String(1024), nullable=False),
    Column("artifact_uri", String(1024), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("stage", String(32), nullable=False, default="None"),
    Column("status", String(32), nullable=False, default="READY"),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=False, default=""),
    Column("flavor", String(64), nullable=True),
    Column("signature", Text, nullable=True),
    Column("metrics", Text, nullable=True),
    Column("lineage", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_model_versions_run", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)

# The current holder of each alias (any name: production, champion, challenger...).
model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("set_at", BigInteger, nullable=False),
    Column("set_by", String(256), nullable=False),
)

# Who held an alias or a stage from when to when; never deleted, so "what was
# serving last Tuesday" and "roll back to the previous one" are queries on it.
model_assignments = Table(
    "model_assignments",
    metadata,
    Column("assignment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),  # "alias" | "stage"
    Column("label", String(256), nullable=False),  # the alias or the stage
    Column("version", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("started_by", String(256), nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("ended_by", String(256), nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_model_assignments_label", "name", "kind", "label", "started_at"),
)

# What a version needs before it may hold a protected alias or stage.
approval_policies = Table(
    "approval_policies",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("required_approvals", Integer, nullable=False, default=0),
    Column("metric_floors", Text, nullable=False, default="{}"),  # {"accuracy": 0.8}
    Column("protected", Text, nullable=False, default="[]"),  # aliases and stages
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

model_approvals = Table(
    "model_approvals",
    metadata,
    Column("approval_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("decision", String(16), nullable=False),  # "approved" | "rejected"
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
    Index("ix_model_approvals_version", "name", "version"),
)

# -- deployments -----------------------------------------------------------------------

# One row per deployment (a named endpoint): its variants, weights and rollout as
# JSON (``state``), changed only by compare-and-swap on ``revision`` so the gateway's
# controller and a user's command never overwrite each other; ``live`` is the
# gateway's latest snapshot of per-variant figures (requests, errors, p99, gates).
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("strategy", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("state", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("live", Text, nullable=True),
    Column("live_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Ground truth for answered requests, joined on arrival to what was predicted
# (which deployment, variant and version answered, and the prediction).
feedback = Table(
    "feedback",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("model", String(256), nullable=False),  # the deployment or served name
    Column("variant", String(64), nullable=True),
    Column("version", String(64), nullable=True),
    Column("prediction", Text, nullable=True),  # JSON
    Column("label", Text, nullable=True),  # JSON
    Column("reward", Float, nullable=True),
    Column("predicted_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_feedback_model", "model", "variant"),
)

# -- monitoring ---------------------------------------------------------------------

# Fired alerts, newest last: the history `modelyard monitor alerts` lists, the
# cooldown's memory, and (trigger = true) the events the pipelines' agent consumes.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule", String(256), nullable=False),
    Column("model", String(256), nullable=False),
    Column("metric", String(256), nullable=False),
    Column("value", Float, nullable=True),
    Column("condition", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("deliveries", Text, nullable=True),  # JSON: sink -> "ok" or the error
    Column("trigger", Boolean, nullable=False),
    Column("fired_at", BigInteger, nullable=False),
    Index("ix_alerts_model_rule", "model", "rule", "fired_at"),
)

# -- datasets -----------------------------------------------------------------------

# Named datasets and their versions (``churn@3``): each version names its content
# (an object or tree id in the data cache and on the remote) and what it holds.
datasets = Table(
    "datasets",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=True),
    Column("last_version", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "name",
        String(256),
        ForeignKey("datasets.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("oid", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("files", Integer, nullable=False),
    Column("path", String(1024), nullable=False),  # where it was added from
    Column("remote", String(1024), nullable=True),  # where it was pushed to
    Column("format", String(16), nullable=True),  # parquet, csv, ... (None: not tabular)
    Column("rows", BigInteger, nullable=True),
    Column("columns", Text, nullable=True),  # JSON: [{"name", "type"}]
    Column("profile_uri", String(1024), nullable=True),
    Column("description", Text, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("user_id", String(256), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_dataset_versions_oid", "oid"),
)

# -- pipelines ----------------------------------------------------------------------

# How far each trigger of the pipelines' agent has read (JSON: the last cron tick
# considered, the last dataset version seen, the newest alert seen), so a restarted
# agent neither misses nor repeats an event.
pipeline_triggers = Table(
    "pipeline_triggers",
    metadata,
    Column("pipeline", String(256), primary_key=True),
    Column("trigger", String(256), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("state", Text, nullable=False),
    Column("armed_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One row per event a trigger saw. The unique key makes recording an event
# idempotent; its status only moves by compare-and-swap: pending -> claimed ->
# running -> finished | failed, or pending -> skipped (coalesced into a newer one).
pipeline_events = Table(
    "pipeline_events",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("pipeline", String(256), nullable=False),
    Column("trigger", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event_key", String(512), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: what the run receives as its trigger
    Column("status", String(16), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("agent_id", String(64), nullable=True),  # who claimed it
    Column("worker_pid", Integer, nullable=True),  # the process running it
    Column("error", Text, nullable=True),
    Column("occurred_at", BigInteger, nullable=False),  # the tick, version or alert time
    Column("created_at", BigInteger, nullable=False),
    Column("claimed_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("pipeline", "trigger", "event_key"),
    Index("ix_pipeline_events_status", "pipeline", "status"),
)

# The agents that claimed events, with a heartbeat: a restarted agent takes over
# only the events of an agent that is gone (its process dead, or silent too long).
pipeline_agents = Table(
    "pipeline_agents",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("hostname", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("poll_seconds", Float, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
)

# The pipelines' step cache: one row per successful step run, found by its cache
# key (code, name and input hashes) in one indexed lookup, however long the history.
pipeline_cache = Table(
    "pipeline_cache",
    metadata,
    Column("cache_key", String(64), primary_key=True),
    Column("run_id", String(32), primary_key=True),
    Column("pipeline", String(256), nullable=False),
    Column("step", String(256), nullable=False),
    Column("output_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
