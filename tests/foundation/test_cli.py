"""flask users create / bootstrap and flask audit verify."""

from backend.extensions import db
from backend.models import AuditLog, User


def test_users_create_and_bootstrap_is_noop_afterwards(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "ops@example.com", "--role", "admin", "--password", "a-long-password-1"]
    )
    assert result.exit_code == 0, result.output
    assert "role=admin" in result.output
    result = runner.invoke(args=["users", "bootstrap"])
    assert result.exit_code == 0 and "One-time password" not in result.output
    with app.app_context():
        assert db.session.query(User).count() == 1


def test_bootstrap_prints_random_password_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["users", "bootstrap"])
    assert first.exit_code == 0 and "One-time password" in first.output
    password = first.output.split("One-time password:")[1].split()[0]
    assert len(password) >= 20
    with app.app_context():
        user = db.session.query(User).one()
        assert user.role == "admin" and password not in user.password_hash
    second = runner.invoke(args=["users", "bootstrap"])
    assert "One-time password" not in second.output
    resp = app.test_client().post("/api/v1/auth/login", json={"email": user.email, "password": password})
    assert resp.status_code == 200


def test_users_create_rejects_short_password(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "x@example.com", "--password", "short"])
    assert result.exit_code != 0 and "password" in result.output


def test_audit_verify_cli(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "a@example.com", "--password", "a-long-password-1"])
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0 and "OK" in ok.output
    with app.app_context():
        row = db.session.query(AuditLog).first()
        row.action = "user.delete"
        db.session.commit()
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN" in broken.output
