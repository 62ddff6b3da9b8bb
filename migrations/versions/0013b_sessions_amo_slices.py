"""market sessions: loaded exchange holidays, after-market orders, sliced orders

``market_holidays`` holds holiday lists loaded with ``flask calendar load FILE``; ``orders.amo``
marks an after-market order queued for the next open; ``orders.parent_id`` links the slices of an
order above the freeze quantity to the first slice.

Revision ID: 0013b_sessions_amo_slices
Revises: 0007_working_orders_index
Create Date: 2026-12-02 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013b_sessions_amo_slices"
down_revision = "0013a_positions_per_product"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "market_holidays",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("exchange", sa.String(8), nullable=False),
        sa.Column("segment", sa.String(16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("exchange", "segment", "day", name="uq_market_holidays_day"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amo", sa.Boolean(), nullable=False, server_default=sa.text("false")))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_orders_parent_id_orders", "orders", ["parent_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_orders_parent_id", ["parent_id"])


def downgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_parent_id")
        batch_op.drop_constraint("fk_orders_parent_id_orders", type_="foreignkey")
        batch_op.drop_column("parent_id")
        batch_op.drop_column("amo")
    op.drop_table("market_holidays")
