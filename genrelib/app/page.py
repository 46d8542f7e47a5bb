"""The web page of ``genrelib app``: a Gradio page served on this machine only (127.0.0.1 unless told otherwise), no
sharing link, no analytics, nothing fetched from outside.

Gradio is imported here only, when the page is built: ``genrelib predict`` never pays for it.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from genrelib.app.songs import (
    DEFAULT,
    SAME_AS,
    TOP_GENRES,
    Predictors,
    check_upload,
    classify,
    model_choices,
)
from genrelib.errors import GenrelibError

logger = logging.getLogger(__name__)

#: Defaults of :func:`serve` (and of ``genrelib app``'s options).
HOST, PORT, MAX_UPLOAD_MB, MAX_MINUTES = "127.0.0.1", 7860, 300, 60.0
#: Answers whose downloads are kept in the page's own folder (Gradio serves its copies).
KEEP_ANSWERS = 8
#: The API name of the page's one action (``/gradio_api/call/classify``, ``client.predict(..., api_name=...)``).
API_NAME = "classify"

INTRO = """# genrelib: what genre is this song?
Upload one or more songs (wav, mp3, flac, ogg, aiff, au, ...) or record one, choose a model, press **Classify**.
Everything runs on this machine: the songs go nowhere else."""


def _offline_gradio():
    """Import Gradio with its analytics off and the Hugging Face Hub offline (set before the import reads them)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    import gradio as gr

    return gr


def build_page(*, model: str | None = None, max_minutes: float = MAX_MINUTES, predictors: Predictors | None = None):
    """The page as a ``gradio.Blocks`` (not yet served).

    Parameters
    ----------
    model : str, optional
        A model to offer besides the default and the registry's (any reference ``genrelib predict --model``
        takes), chosen at first.
    max_minutes : float
        Longest song accepted, in minutes.
    predictors : Predictors, optional
        The predictor cache (default: a new one, for this page's process).
    """
    gr = _offline_gradio()
    from gradio.utils import get_upload_folder

    predictors = predictors or Predictors()
    choices, note = model_choices(model)
    known = {ref for _, ref in choices}  # the only models a request may name: what the page listed
    known_lock = threading.Lock()
    downloads = Path(tempfile.mkdtemp(prefix="genrelib-app-"))  # Gradio copies each answer's files to its cache
    atexit.register(shutil.rmtree, downloads, ignore_errors=True)
    counter = iter(range(1 << 62))

    def refresh():
        fresh, why = model_choices(model)
        with known_lock:
            known.update(ref for _, ref in fresh)
        return gr.update(choices=fresh), why or ""

    def answer(files, recording, ref, progress=gr.Progress()):
        """The page's action: every outcome is a status line and what could be shown, never a traceback."""
        empty = ([], None, None, None)
        uploads = [f for f in (files or []) if f] + ([recording] if recording else [])
        if not uploads:
            return ("upload a song (or record one) first", *empty)
        with known_lock:
            allowed = ref in known
        if not allowed:
            return (f"model {ref!r} is not one this page offers; choose one from the list", *empty)
        try:
            checked = [(check_upload(f, get_upload_folder()), Path(str(f)).name) for f in uploads]
            predictor, loaded = predictors.get(ref)
            result = classify(
                predictor, checked, max_seconds=max_minutes * 60, progress=lambda f, text: progress(f, desc=text)
            )
            result.notes.append(
                f"model loaded for this request in {loaded:.1f} s" if loaded is not None else "model already loaded"
            )
            bars, timeline = result.figures()
            n = next(counter)
            written = result.write(downloads / str(n))
            shutil.rmtree(downloads / str(n - KEEP_ANSWERS), ignore_errors=True)  # long since copied
        except GenrelibError as exc:
            return (" ".join(str(exc).split()), *empty)
        except Exception as exc:  # noqa: BLE001 - a bug: one line on the page, the trace in the app's log
            logger.exception("unexpected error while answering")
            return (f"internal error ({type(exc).__name__}); the app's log has the details", *empty)
        return result.status(), result.table(), bars, timeline, [str(p) for p in written] or None

    with gr.Blocks(title="genrelib: genre of your songs", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=3):
                songs = gr.File(label="Songs", file_count="multiple", type="filepath")
                recording = gr.Audio(label="Or record from the microphone", sources=["microphone"], type="filepath")
            with gr.Column(scale=2):
                start = model if model else DEFAULT
                chosen = gr.Dropdown(choices=choices, value=start, label="Model", interactive=True)
                listed = gr.Markdown(note or "")
                again = gr.Button("Refresh the list of registered models", size="sm")
                go = gr.Button("Classify", variant="primary")
        status = gr.Markdown()
        table = gr.Dataframe(
            headers=["song", "length (s)", *(f"genre {i}" for i in range(1, TOP_GENRES + 1)), "musicnn tags"],
            label="Songs",
            interactive=False,
            wrap=True,
            column_widths=["22%", "9%", *["11%"] * TOP_GENRES, "36%"],
        )
        with gr.Row():
            bars = gr.Plot(label="Top genres")
            timeline = gr.Plot(label="Genre over time")
        files_out = gr.File(label=f"Download the results (the columns of {SAME_AS})", file_count="multiple")
        go.click(
            answer,
            inputs=[songs, recording, chosen],
            outputs=[status, table, bars, timeline, files_out],
            api_name=API_NAME,
        )
        again.click(refresh, outputs=[chosen, listed], api_name="models")
    return page


class NoFetching:
    """ASGI middleware: Gradio's file route streams any public http(s) URL a client names (``/file=https://...``);
    this page answers 403 instead, so that no request makes the server fetch from another host."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        _, found, rest = scope.get("path", "").partition("/file=") if scope["type"] == "http" else ("", "", "")
        if found and rest.lower().startswith(("http:", "https:")):
            body = b'{"detail": "this page fetches nothing from other hosts"}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def serve(
    *,
    host: str = HOST,
    port: int = PORT,
    model: str | None = None,
    max_upload_mb: float = MAX_UPLOAD_MB,
    max_minutes: float = MAX_MINUTES,
    predictors: Predictors | None = None,
    block: bool = True,
):
    """Build the page and serve it on ``host:port``; returns the Blocks (with ``block=False``, at once, the server
    running in a thread: ``page.close()`` stops it). ``predictors``: the predictor cache (models loaded already).

    No sharing link, no analytics, no server-side rendering (no Node process), no fetching of URLs for clients
    (:class:`NoFetching`); uploads over ``max_upload_mb`` are refused by the server. A request waits for the one before it (one at a time: the predictor uses every core).
    """
    from starlette.middleware import Middleware

    page = build_page(model=model, max_minutes=max_minutes, predictors=predictors)
    page.queue(default_concurrency_limit=1)
    page.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        show_error=False,
        max_file_size=int(max_upload_mb * 1_000_000),
        prevent_thread_lock=not block,
        quiet=True,
        footer_links=["api"],
        app_kwargs={"middleware": [Middleware(NoFetching)]},
    )
    return page
