"""live Upstox: exactly-once order states, broker texts kept, trades reconciled

* ``orders.product`` / ``positions.product`` / ``trades.product`` widen to 16 characters: a product
  Upstox reports that we do not trade (MTF, CO) is stored as ``other``.
* ``orders.broker_status`` / ``orders.broker_product`` keep Upstox's raw texts.
* ``trades.broker_trade_id``: a reconciled trade is added once.
* ``broker_connections.market_data_feed``: the connection an admin designated for the shared feed.
* ``ix_orders_unresolved``: the resolver's list of ``submitting`` / ``unknown`` live orders.

Revision ID: 0014_live_upstox
Revises: 0007_working_orders_index
Create Date: 2026-12-02 17:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_live_upstox"
down_revision = "0013c_fno_margin"
branch_labels = None
depends_on = None

UNRESOLVED = sa.text("status IN ('submitting', 'unknown')")


def upgrade():
    with op.batch_alter_table("broker_connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("market_data_feed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("product", existing_type=sa.String(length=2), type_=sa.String(length=16))
        batch_op.add_column(sa.Column("broker_status", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("broker_product", sa.String(length=16), nullable=True))
        batch_op.create_index(
            "ix_orders_unresolved", ["updated_at"], postgresql_where=UNRESOLVED, sqlite_where=UNRESOLVED
        )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.alter_column("product", existing_type=sa.String(length=2), type_=sa.String(length=16))
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.alter_column("product", existing_type=sa.String(length=2), type_=sa.String(length=16))
        batch_op.add_column(sa.Column("broker_trade_id", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("broker_connections", schema=None) as batch_op:
        batch_op.drop_column("market_data_feed")
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_column("broker_trade_id")
        batch_op.alter_column("product", existing_type=sa.String(length=16), type_=sa.String(length=2))
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.alter_column("product", existing_type=sa.String(length=16), type_=sa.String(length=2))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_unresolved")
        batch_op.drop_column("broker_product")
        batch_op.drop_column("broker_status")
        batch_op.alter_column("product", existing_type=sa.String(length=16), type_=sa.String(length=2))
