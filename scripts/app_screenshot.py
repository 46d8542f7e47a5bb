"""Take the README's screenshot of ``genrelib app`` with a result, in headless Chromium, and check the page as a
person's browser meets it: how long it takes to show, and that it fetches nothing from outside this machine.

Needs playwright (``pip install playwright``; not a genrelib dependency) and a Chromium (``--chromium``, default
/usr/bin/chromium; playwright's own browser download is not used).

    python scripts/app_screenshot.py SONG [SONG ...] --out docs/app.png

Starts ``genrelib app`` on a free loopback port (a fresh, empty tracking store: the default model), opens the page,
uploads the songs, presses Classify, waits for the figures and writes a PNG of the page (quantized to stay small).
Prints the page's load time and every request the browser made to another host (there should be none).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def start_app(home: Path) -> tuple[subprocess.Popen, str, float]:
    """Start ``genrelib app`` on a free loopback port with its store and uploads under ``home``; returns the process,
    the page's URL and the seconds until it said where it listens (``benchmarks/bench.py`` starts it so too).

    Raises
    ------
    RuntimeError
        When it exits or does not start within 300 s (its log's end in the message).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
        GRADIO_TEMP_DIR=str(home / "uploads"),
        PYTHONPATH=str(ROOT),
    )
    log = home / "app.log"
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genrelib", "app", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    while "genrelib app: http://" not in log.read_text():
        if proc.poll() is not None or time.perf_counter() - t0 > 300:
            proc.terminate()
            raise RuntimeError(f"genrelib app did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}/", time.perf_counter() - t0


def shrink(png: Path, limit: int = 300_000) -> None:
    """Quantize the screenshot to a palette (fewer colours until it is under ``limit`` bytes)."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    for colours in (256, 128, 64, 32):
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
        if png.stat().st_size < limit:
            return


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("songs", nargs="+", type=Path, help="songs to upload")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "app.png")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--width", type=int, default=1280)
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="genrelib-screenshot-"))
    proc, url, _ = start_app(home)
    outside: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(  # a fresh profile folder (--user-data-dir)
                str(home / "chromium"),
                executable_path=args.chromium,
                headless=True,  # playwright's own --headless
                args=[f for f in FLAGS if f != "--headless"],
                viewport={"width": args.width, "height": 900},
            )
            page = browser.new_page()
            page.on(
                "request",
                lambda r: (
                    outside.append(r.url) if urlparse(r.url).hostname not in ("127.0.0.1", "localhost", None) else None
                ),
            )
            t0 = time.perf_counter()
            page.goto(url)
            page.get_by_role("button", name="Classify").wait_for()
            load = time.perf_counter() - t0
            with page.expect_response(lambda r: "/upload" in r.url, timeout=120_000):  # the songs reach the server
                page.locator("input[type=file]").first.set_input_files([str(s) for s in args.songs])
            page.wait_for_timeout(1000)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Classify").click()
            try:
                # the status's last line, then the downloads (Gradio shows a file's name in two parts: stem, suffix)
                page.get_by_text(re.compile("model (already loaded|loaded for this request)")).wait_for(timeout=300_000)
                page.locator("text=genrelib-results >> visible=true").first.wait_for(timeout=60_000)
            except Exception:
                page.screenshot(path=str(home / "failed.png"), full_page=True)
                raise SystemExit(f"no result on the page; it looked like {home / 'failed.png'}") from None
            page.wait_for_timeout(1000)  # the figures' images
            answer = time.perf_counter() - t0
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    shrink(args.out)
    print(f"page shown {load:.2f} s after it was asked for; answered in {answer:.1f} s")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1000:.0f} KB)")
    print("requests to other hosts: " + (", ".join(outside) if outside else "none"))
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
