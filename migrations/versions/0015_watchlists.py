"""watchlists: a user's named, ordered symbol lists for the dashboard

Revision ID: 0015_watchlists
Revises: 0007_working_orders_index
Create Date: 2026-12-02 17:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_watchlists"
down_revision = "0017a_audit_seal_and_revocations"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "watchlists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_watchlists_user_name"),
    )
    with op.batch_alter_table("watchlists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watchlists_user_id"), ["user_id"], unique=False)
    op.create_table(
        "watchlist_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watchlist_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["watchlist_id"], ["watchlists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("watchlist_id", "symbol", name="uq_watchlist_items_list_symbol"),
    )
    with op.batch_alter_table("watchlist_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watchlist_items_watchlist_id"), ["watchlist_id"], unique=False)


def downgrade():
    with op.batch_alter_table("watchlist_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watchlist_items_watchlist_id"))
    op.drop_table("watchlist_items")
    with op.batch_alter_table("watchlists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_watchlists_user_id"))
    op.drop_table("watchlists")
