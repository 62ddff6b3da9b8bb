"""positions per product: intraday (I) and delivery (D) are separate positions of one symbol

The unique key of a position becomes (account, symbol, product). Existing rows already carry the
product of the fill that opened them, so they stay as they are.

Revision ID: 0013a_positions_per_product
Revises: 0007_working_orders_index
Create Date: 2026-12-02 17:30:00
"""

from alembic import op

revision = "0013a_positions_per_product"
down_revision = "0007_working_orders_index"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_positions_account_symbol", type_="unique")
        batch_op.create_unique_constraint(
            "uq_positions_account_symbol_product", ["account_id", "symbol", "product"]
        )


def downgrade():
    # Fails if an account holds both products of one symbol: merge them by hand first.
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_positions_account_symbol_product", type_="unique")
        batch_op.create_unique_constraint("uq_positions_account_symbol", ["account_id", "symbol"])
