"""The ``app`` command: the web page for classifying your own songs (:mod:`genrelib.app`)."""

from __future__ import annotations

import argparse
import sys

from genrelib.cli.common import check_port


def cmd_app(args: argparse.Namespace) -> int:
    from genrelib.app import Predictors, serve
    from genrelib.app.page import API_NAME

    check_port(args.host, args.port, who="another genrelib app?")
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
