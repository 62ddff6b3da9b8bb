"""working orders: partial indexes instead of scanning every order an account ever placed

Placing an order sums the cash held by the account's working orders, and the tick matcher looks up
working orders by symbol. Both filtered by status over an index that holds every order, so their
cost grew with the account's history (11,000 orders: 6 ms of PostgreSQL time per placement).
The partial indexes hold only working rows.

Revision ID: 0007_working_orders_index
Revises: 0004_broker
Create Date: 2026-11-24 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_working_orders_index"
down_revision = "0004_broker"
branch_labels = None
depends_on = None

# copied, not imported: a migration keeps the predicate of its own revision
WORKING = sa.text("status IN ('pending', 'open', 'trigger_pending', 'partially_filled')")


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_symbol_status")
        batch_op.create_index(
            "ix_orders_working_account", ["account_id"], postgresql_where=WORKING, sqlite_where=WORKING
        )
        batch_op.create_index(
            "ix_orders_working_symbol", ["symbol"], postgresql_where=WORKING, sqlite_where=WORKING
        )


def downgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_working_symbol")
        batch_op.drop_index("ix_orders_working_account")
        batch_op.create_index("ix_orders_symbol_status", ["symbol", "status"])
