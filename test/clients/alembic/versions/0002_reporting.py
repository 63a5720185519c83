"""A view, a materialized view, SQL and PL/pgSQL functions and a trigger."""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.execute("CREATE VIEW al_order_totals AS SELECT customer_id, sum(total) AS total FROM al_orders GROUP BY customer_id")
    op.execute("CREATE MATERIALIZED VIEW al_order_counts AS SELECT status, count(*) AS n FROM al_orders GROUP BY status")
    op.execute(
        "CREATE FUNCTION al_customer_total(c integer) RETURNS numeric LANGUAGE sql STABLE "
        "AS $$ SELECT coalesce(sum(total), 0) FROM al_orders WHERE customer_id = c $$"
    )
    op.execute(
        "CREATE FUNCTION al_touch() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
    )
    op.execute("CREATE TRIGGER al_orders_touch BEFORE INSERT OR UPDATE ON al_orders FOR EACH ROW EXECUTE FUNCTION al_touch()")


def downgrade():
    op.execute("DROP TRIGGER al_orders_touch ON al_orders")
    op.execute("DROP FUNCTION al_touch()")
    op.execute("DROP FUNCTION al_customer_total(integer)")
    op.execute("DROP MATERIALIZED VIEW al_order_counts")
    op.execute("DROP VIEW al_order_totals")
