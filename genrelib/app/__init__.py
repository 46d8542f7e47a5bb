"""Layer 11, beside the pipeline, under the command line: the web page of ``genrelib app``, for classifying your own songs in a browser.

``page`` builds and serves the Gradio page (:func:`build_page`, :func:`serve`; Gradio is imported only there, when
the page is built); ``songs`` is what the page does with the uploads, without Gradio: the models it offers
(:func:`model_choices`), one predictor per model per process (:class:`Predictors`), the upload check
(:func:`check_upload`) and a request's answer (:func:`classify`, :class:`PageAnswer`). It uses ``inference``,
``tracking`` and ``plots``; only ``cli`` imports it.
"""

from genrelib.app.page import build_page, serve
from genrelib.app.songs import PageAnswer, Predictors, check_upload, classify, model_choices

__all__ = ["build_page", "check_upload", "classify", "model_choices", "PageAnswer", "Predictors", "serve"]
