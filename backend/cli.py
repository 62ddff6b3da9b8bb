"""``flask`` commands: users, audit. Domains add their own groups in register_commands."""

from __future__ import annotations

import secrets

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from backend.extensions import db


@click.group("users", cls=AppGroup)
def users_cli() -> None:
    """Manage users."""


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "trader", "viewer"]), default="trader", show_default=True)
@click.option("--password", envvar="NEW_USER_PASSWORD", help="Prompted for when omitted.")
def create_user_cmd(email: str, role: str, password: str | None) -> None:
    """Create a user with ROLE."""
    from backend.services.auth import create_user

    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.BadParameter("password must be at least 10 characters", param_hint="--password")
    user = create_user(email, password, role)
    db.session.commit()
    click.echo(f"created user {user.id} {user.email} role={user.role}")


@users_cli.command("bootstrap")
def bootstrap_cmd() -> None:
    """Create the first admin when there are no users (ADMIN_EMAIL / ADMIN_PASSWORD, or a random password)."""
    from flask import current_app

    from backend.models import User
    from backend.services.auth import create_user

    if db.session.scalar(select(func.count(User.id))):
        return
    email = current_app.config.get("ADMIN_EMAIL") or "admin@localhost"
    password = current_app.config.get("ADMIN_PASSWORD")
    generated = password is None
    password = password or secrets.token_urlsafe(18)
    create_user(email, password, "admin")
    db.session.commit()
    if generated:
        # Shown exactly once; it is not stored anywhere in clear text.
        click.echo("=" * 64)
        click.echo(f" First admin created: {email}")
        click.echo(f" One-time password:   {password}")
        click.echo(" Change it with PATCH /api/v1/auth/me/password after logging in.")
        click.echo("=" * 64)
    else:
        click.echo(f"first admin created from ADMIN_EMAIL/ADMIN_PASSWORD: {email}")


@click.group("audit", cls=AppGroup)
def audit_cli() -> None:
    """Audit log tools."""


@audit_cli.command("verify")
def audit_verify_cmd() -> None:
    """Recompute the audit hash chain; exit 1 if it was tampered with."""
    from backend.services.audit import verify_chain

    report = verify_chain()
    if report.ok:
        click.echo(f"audit chain OK ({report.checked} rows)")
        return
    where = f" at row {report.first_bad_id}" if report.first_bad_id is not None else ""
    click.echo(f"audit chain BROKEN{where}: {report.reason}", err=True)
    raise SystemExit(1)


@audit_cli.command("anchor")
def audit_anchor_cmd() -> None:
    """Anchor the chain as it is now (once, after upgrading a database that has audit rows)."""
    from backend.services.audit import anchor_current

    click.echo(f"audit chain anchored at {anchor_current()} rows")


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    from backend.services.broker import tokens_cli

    app.cli.add_command(tokens_cli)
    from backend import cli_market

    cli_market.register(app)
    from backend.services.jobs import register_cli as _jobs_cli

    _jobs_cli(app)
    from backend.services.scheduler import expiry_cli, session_cli

    app.cli.add_command(session_cli)
    app.cli.add_command(expiry_cli)
    from backend.services.market_calendar import calendar_cli

    app.cli.add_command(calendar_cli)
