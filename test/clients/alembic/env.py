"""Alembic's environment: the migrations URL from DATABASE_URL, on psycopg 3.

VERSION_TABLE_SCHEMA puts alembic_version in the service's own schema; without it Alembic uses the
first schema of the login's search_path, which the platform sets to the service's schemas.
"""
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

if context.config.config_file_name:
    fileConfig(context.config.config_file_name)

url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        version_table_schema=os.environ.get("VERSION_TABLE_SCHEMA") or None,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
