"""F&O margin: the margin an order blocks once filled, and the margin an open position holds

Revision ID: 0013c_fno_margin
Revises: 0007_working_orders_index
Create Date: 2026-12-02 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013c_fno_margin"
down_revision = "0013b_sessions_amo_slices"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 4)


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("margin", MONEY, nullable=False, server_default="0"))
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("margin", MONEY, nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_column("margin")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("margin")
