"""Customers and orders: serial and identity keys, an enum type, a foreign key, an index."""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "al_customers",
        sa.Column("id", sa.Integer, primary_key=True),  # serial
        sa.Column("email", sa.Text, nullable=False, unique=True),
    )
    status = postgresql.ENUM("new", "paid", "shipped", name="al_order_status")
    op.create_table(
        "al_orders",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("al_customers.id"), nullable=False),
        sa.Column("status", status, nullable=False, server_default="new"),
        sa.Column("total", sa.Numeric(10, 2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    op.create_index("al_orders_customer", "al_orders", ["customer_id"])


def downgrade():
    op.drop_table("al_orders")
    op.drop_table("al_customers")
    op.execute("DROP TYPE al_order_status")
