"""What a service's application and readers do with the objects its migrations made, through the ORMs.

    client.py sqlalchemy-app | sqlalchemy-read | django-app | django-read

DATABASE_URL is the login's URL. Prints one JSON object: what it read, and for readers the
SQLSTATE of the write it must not be allowed (null if the write went through).
"""
import json
import os
import sys
import uuid


def sqlalchemy_engine():
    from sqlalchemy import create_engine

    # Through a transaction-mode PgBouncer: psycopg must not prepare statements by name (docs/pooling.md).
    pooled = os.environ.get("DB_POOL_MODE") == "transaction"
    return create_engine(
        os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1),
        connect_args={"prepare_threshold": None} if pooled else {},
    )


def sqlalchemy_tables(conn):
    from sqlalchemy import MetaData, Table

    meta = MetaData()
    return {n: Table(n, meta, autoload_with=conn) for n in ("al_customers", "al_orders", "al_order_totals", "al_order_counts")}


def sqlalchemy_app():
    from sqlalchemy import func, select, text

    engine = sqlalchemy_engine()
    with engine.begin() as conn:
        t = sqlalchemy_tables(conn)
        cid = conn.execute(t["al_customers"].insert().values(email=f"{uuid.uuid4()}@example.com").returning(t["al_customers"].c.id)).scalar_one()
        order = conn.execute(t["al_orders"].insert().values(customer_id=cid, status="paid", total=12.5).returning(t["al_orders"].c.id, t["al_orders"].c.updated_at)).one()
        conn.execute(t["al_orders"].update().where(t["al_orders"].c.id == order.id).values(status="shipped"))
        total = conn.execute(select(func.al_customer_total(cid))).scalar_one()
        view = conn.execute(select(t["al_order_totals"].c.total).where(t["al_order_totals"].c.customer_id == cid)).scalar_one()
        counts = conn.execute(select(func.count()).select_from(t["al_order_counts"])).scalar_one()
        orders = conn.execute(select(func.count()).select_from(t["al_orders"])).scalar_one()
        schema = conn.execute(text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'al_orders'")).scalar_one()
    print(json.dumps({"orders": orders, "total": float(total), "view": float(view), "touched": order.updated_at is not None, "matview_rows": counts, "schema": schema}))


def denied(error):
    return getattr(getattr(error, "orig", error), "sqlstate", None) or str(error)


def sqlalchemy_read():
    from sqlalchemy import func, select

    engine = sqlalchemy_engine()
    with engine.connect() as conn:
        t = sqlalchemy_tables(conn)
        orders = conn.execute(select(func.count()).select_from(t["al_orders"])).scalar_one()
        totals = conn.execute(select(func.count()).select_from(t["al_order_totals"])).scalar_one()
    write = None
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy_tables(conn)["al_customers"].insert().values(email="reader@example.com"))
    except Exception as e:  # noqa: BLE001 - the SQLSTATE is the result
        write = denied(e)
    print(json.dumps({"orders": orders, "totals": totals, "write": write}))


def django_setup():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "django"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clientsite.settings")
    import django

    django.setup()


def django_app():
    django_setup()
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from clientsite.notes.models import Note

    with transaction.atomic():
        user = User.objects.create_user(f"user-{uuid.uuid4().hex[:8]}", password="secret-of-the-suite")
        Note.objects.create(author=user, text="written by the app login")
    with connection.cursor() as c:
        c.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 'notes_note'")
        schema = c.fetchone()[0]
    print(json.dumps({"users": User.objects.count(), "notes": Note.objects.filter(author=user).count(), "schema": schema}))


def django_read():
    django_setup()
    from django.contrib.auth.models import User

    from clientsite.notes.models import Note

    users, notes = User.objects.count(), Note.objects.count()
    write = None
    try:
        User.objects.create_user("reader", password="x")
    except Exception as e:  # noqa: BLE001 - the SQLSTATE is the result
        write = denied(getattr(e, "__cause__", None) or e)
    print(json.dumps({"users": users, "notes": notes, "write": write}))


if __name__ == "__main__":
    {"sqlalchemy-app": sqlalchemy_app, "sqlalchemy-read": sqlalchemy_read, "django-app": django_app, "django-read": django_read}[sys.argv[1]]()
