"""CLI command groups. Every module here defines `register(app: typer.Typer) -> None`;
`cli.py` discovers and registers them all, so adding a command touches one new file."""
