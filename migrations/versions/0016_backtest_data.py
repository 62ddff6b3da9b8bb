"""backtest jobs: parsed input bars and full results as binary columns

A job's input is parsed once at submit and stored as numpy arrays (``input_data``), so workers
never re-parse a CSV; the full equity curve and trade list go to ``result_data`` while ``result``
keeps the summary. Both are deferred in the model: listing jobs never loads them.

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
    with op.batch_alter_table("backtest_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_data", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("result_data", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("backtest_jobs", schema=None) as batch_op:
        batch_op.drop_column("result_data")
        batch_op.drop_column("input_data")
