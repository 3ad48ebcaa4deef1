"""`edge-gateway` subcommands, one module per concern; each exposes `register(app)`."""
