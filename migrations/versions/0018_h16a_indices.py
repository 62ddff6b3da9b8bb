"""portfolio indices: definitions, daily values and per-rebalance allocations (append-only)

Revision ID: 0018_h16a_indices
Revises: 0014b_signals
Create Date: 2026-12-03 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_h16a_indices"
down_revision = "0014b_signals"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "portfolio_indices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("weighting", sa.String(24), nullable=False),
        sa.Column("weighting_params", sa.JSON(), nullable=False),
        sa.Column("lookback", sa.Integer(), nullable=False),
        sa.Column("rebalance", sa.String(12), nullable=False),
        sa.Column("drift_threshold", sa.Numeric(12, 6)),
        sa.Column("drift_mode", sa.String(12), nullable=False),
        sa.Column("base_value", sa.Numeric(20, 4), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("capital", sa.Numeric(20, 4), nullable=False),
        sa.Column("apply_charges", sa.Boolean(), nullable=False),
        sa.Column("computed_until", sa.Date()),
        sa.Column("state", sa.JSON()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_portfolio_indices_user_name"),
    )
    op.create_index("ix_portfolio_indices_user_id", "portfolio_indices", ["user_id"])
    op.create_table(
        "index_values",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "index_id",
            sa.Integer(),
            sa.ForeignKey("portfolio_indices.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Numeric(20, 4), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("index_id", "day", name="uq_index_values_index_day"),
    )
    op.create_index("ix_index_values_index_id", "index_values", ["index_id"])
    op.create_table(
        "index_allocations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "index_id",
            sa.Integer(),
            sa.ForeignKey("portfolio_indices.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("target_weight", sa.Numeric(14, 10), nullable=False),
        sa.Column("units", sa.Numeric(30, 10), nullable=False),
        sa.Column("traded_units", sa.Numeric(30, 10), nullable=False),
        sa.Column("price", sa.Numeric(18, 4), nullable=False),
        sa.Column("charges", sa.Numeric(20, 4), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("index_id", "day", "symbol", name="uq_index_allocations_index_day_symbol"),
    )
    op.create_index("ix_index_allocations_index_id", "index_allocations", ["index_id"])


def downgrade():
    op.drop_index("ix_index_allocations_index_id", table_name="index_allocations")
    op.drop_table("index_allocations")
    op.drop_index("ix_index_values_index_id", table_name="index_values")
    op.drop_table("index_values")
    op.drop_index("ix_portfolio_indices_user_id", table_name="portfolio_indices")
    op.drop_table("portfolio_indices")
