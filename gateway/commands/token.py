"""`edge-gateway token create|list|revoke`: local-API bearer tokens (stored hashed)."""

from typing import Annotated

import typer

from gateway.commands.common import ConfigOption, fail, settings_from
from gateway.store import DATABASE_FILENAME, Database, StoreError, open_database, tokens
from gateway.store.tokens import Scope

token_app = typer.Typer(no_args_is_help=True, help="Local API bearer tokens: create, list, revoke.")


def _open(config: ConfigOption) -> Database:
    """Open the configured store, saying on stderr which file it is (and if it is new)."""
    settings = settings_from(config)
    path = settings.data_dir / DATABASE_FILENAME
    existed = path.exists()
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = open_database(path)
    except (StoreError, OSError) as exc:
        msg = f"{settings.data_dir}: cannot open the store ({exc})"
        raise fail(msg) from exc
    # A token only works for the gateway using this same file: name it (--config or
    # $GATEWAY_CONFIG choose it; without them it is the default data_dir).
    state = "using" if existed else "created"
    typer.echo(f"{state} database {path}", err=True)
    return db


@token_app.command("create")
def create(
    scope: Annotated[Scope, typer.Option(help="read: see data; admin: change it too.")],
    label: Annotated[str | None, typer.Option(help="A note on who holds the token.")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a token and print it (shown once: the store keeps only its hash).

    The token is alone on the last stdout line.
    """
    db = _open(config)
    try:
        plain, info = tokens.create_token(db, scope, label)
    finally:
        db.close()
    typer.echo(
        f"created token {info.id} with scope {info.scope.value}; it is shown once:", err=True
    )
    typer.echo(plain)


@token_app.command("list")
def list_tokens(config: ConfigOption = None) -> None:
    """List tokens (ids, scopes, labels; never the tokens)."""
    db = _open(config)
    try:
        found = tokens.list_tokens(db)
    finally:
        db.close()
    for info in found:
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
        typer.echo(f"{info.id}\t{info.scope.value}\t{state}\t{info.label or ''}")


@token_app.command("revoke")
def revoke(
    token_id: Annotated[int, typer.Argument(help="The id `token list` shows.", min=1)],
    config: ConfigOption = None,
) -> None:
    """Revoke a token; requests with it get 401 at once."""
    db = _open(config)
    try:
        revoked = tokens.revoke_token(db, token_id)
    finally:
        db.close()
    if not revoked:
        msg = f"no active token {token_id}; see `edge-gateway token list`"
        raise fail(msg)
    typer.echo(f"token {token_id} revoked")


def register(app: typer.Typer) -> None:
    """Add the `token` group to the root app."""
    app.add_typer(token_app, name="token")
