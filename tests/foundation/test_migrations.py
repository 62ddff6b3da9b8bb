"""Migrations build the schema, go down and up again, and match the models exactly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from backend import create_app
from tests.conftest import USING_POSTGRES, app_config


@pytest.fixture(scope="module")
def scratch_app(tmp_path_factory):
    if USING_POSTGRES:
        import os

        import psycopg

        base = os.environ["TEST_DATABASE_URL"]
        admin_url = base.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS tp_migrations_test")
            conn.execute("CREATE DATABASE tp_migrations_test")
        url = base.rsplit("/", 1)[0] + "/tp_migrations_test"
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('mig')}/m.db"
    app = create_app(app_config(SQLALCHEMY_DATABASE_URI=url))
    yield app
    from backend.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_up_down_up_and_no_model_diff(scratch_app):
    from backend.extensions import db

    with scratch_app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "api_keys", "refresh_tokens", "audit_log", "revoked_tokens"} <= tables
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"

        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

        upgrade()
        assert {"users", "audit_log"} <= set(inspect(db.engine).get_table_names())
