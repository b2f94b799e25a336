"""`shield serve [--host 127.0.0.1] [--port 8000]`: the local verify page in a browser."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from shield.commands._common import notice, settings
from shield.errors import InputError

#: Default photo size limit of the page, in MB (a 24 MP PNG is about 35 MB).
DEFAULT_MAX_UPLOAD_MB = 40.0


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        InputError: the address cannot be resolved, or is taken or not this machine's.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {host}: {exc.strerror}", fix="pass --host 127.0.0.1") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         fix="choose another --port (or 0 for any free port)") from exc
    return sock


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address lets others on the network protect photos with your keys.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port (0: any free port).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=DEFAULT_MAX_UPLOAD_MB, show_default=True,
              envvar="SHIELD_SERVE_MAX_UPLOAD_MB", help="Largest photo accepted, in MB (1 MB = 2^20 bytes).")
@click.option("--trust", "trust", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="PEM file of trust anchors (default: the local keystore's).")
@click.option("--offline", is_flag=True, help="Skip the ledger lookup when verifying.")
def serve(host: str, port: int, max_upload_mb: float, trust: Path | None, offline: bool) -> None:
    """Serve the verify page: drop a photo to see its verdict, tamper map and ledger record.

    The page also protects photos (signed with this computer's keys) and offers them
    for download. It uses no external assets and works offline.
    """
    import uvicorn

    from shield.serve import ServeOptions, create_app
    from shield.serve.guard import allowed_hosts_for, is_loopback

    options = ServeOptions(
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        trust_anchors=trust.read_bytes() if trust else None,
        use_ledger=not offline,
        allowed_hosts=allowed_hosts_for(host),
    )
    app = create_app(settings(), options)
    sock = listen(host, port)
    if not is_loopback(host):
        notice(f"listening on {host}: anyone who can reach it can protect photos with your keys; "
               "use the default --host 127.0.0.1 unless you mean that")
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"shield: verify page at http://{shown}:{bound}/ (Ctrl+C to stop)", err=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
