"""backtest jobs: parsed input bars and full results in their own table

A job's input is parsed once at submit and stored as numpy arrays (name ``input``), so workers
never re-parse a CSV; the full equity curve and trade list are stored as ``result`` while the job's
``result`` column keeps the summary. A separate table, so progress updates of the job row never
rewrite tens of megabytes, and listing jobs never reads them.

Revision ID: 0016_backtest_data
Revises: 0007_working_orders_index
Create Date: 2026-12-02 18:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_backtest_data"
down_revision = "0015_watchlists"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "backtest_job_data",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["backtest_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "name"),
    )


def downgrade():
    op.drop_table("backtest_job_data")
