"""CLI commands, one module per top-level command (see shield.cli.COMMANDS)."""
