"""The ``app`` command: the web page for classifying your own songs (:mod:`genrelib.app`)."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

from genrelib.errors import GenrelibError


def check_port(host: str, port: int) -> None:
    """Refuse, in one line and before any work, a port that is taken or a host that is not this machine's."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise GenrelibError(f"--host {host}: not an address of this machine ({exc.strerror}); give 127.0.0.1") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise GenrelibError(
                    f"port {port} on {host} is in use (another genrelib app?); give another with --port"
                ) from exc
            raise GenrelibError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from exc


def cmd_app(args: argparse.Namespace) -> int:
    from genrelib.app import Predictors, serve
    from genrelib.app.page import API_NAME

    check_port(args.host, args.port)
    predictors = Predictors()
    predictor, seconds = predictors.get(args.model or "default")  # a bad --model: one line now, not on the page
    print(f"{predictor.describe()} (loaded in {seconds:.1f} s)")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: --host {args.host}: the page (and your songs' answers) can be reached from other machines",
            file=sys.stderr,
        )
    page = serve(
        host=args.host,
        port=args.port,
        model=args.model,
        max_upload_mb=args.max_upload_mb,
        max_minutes=args.max_minutes,
        predictors=predictors,
        block=False,
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"genrelib app: http://{host}:{args.port}/ (API: {API_NAME}; Ctrl-C stops it)", flush=True)
    try:
        page.block_thread()
    finally:
        page.close()
    return 0
