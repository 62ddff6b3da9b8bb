"""signals from outside: webhook tokens, alert mappings, received signals

Revision ID: 0014b_signals
Revises: 0014_live_upstox
Create Date: 2026-12-02 18:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014b_signals"
down_revision = "0016_backtest_data"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade():
    op.create_table(
        "signal_webhooks",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hmac_secret_encrypted", sa.Text()),
        *_timestamps(),
    )
    op.create_table(
        "signal_mappings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("trading_accounts.id", ondelete="CASCADE")),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(2), nullable=False),
        sa.Column("order_type", sa.String(8), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("user_id", "name", name="uq_signal_mappings_user_name"),
    )
    op.create_index("ix_signal_mappings_user_id", "signal_mappings", ["user_id"])
    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("alert_id", sa.String(128)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("mapping_id", sa.Integer(), sa.ForeignKey("signal_mappings.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("orders.id", ondelete="SET NULL")),
        sa.Column("order_status", sa.String(20)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "alert_id", name="uq_signals_user_alert"),
    )
    op.create_index("ix_signals_user_id", "signals", ["user_id"])


def downgrade():
    op.drop_index("ix_signals_user_id", table_name="signals")
    op.drop_table("signals")
    op.drop_index("ix_signal_mappings_user_id", table_name="signal_mappings")
    op.drop_table("signal_mappings")
    op.drop_table("signal_webhooks")
