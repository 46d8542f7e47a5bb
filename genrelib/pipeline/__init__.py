"""Layer 11, the notebooks' runner: the six notebooks run headlessly by papermill under one MLflow parent run,
their parameters checked (type, range, existing paths) before any of them starts, and the kernel metadata the
notebooks are committed with."""

from genrelib.pipeline.kernel import KERNEL, kernel_metadata, normalize_notebook
from genrelib.pipeline.parameters import (
    NOTEBOOKS,
    RULES,
    NotebookError,
    check_parameters,
    notebook_parameters,
    parse_value,
)
from genrelib.pipeline.run import PATH_PARAMETERS, SUMMARY_METRICS, NotebookRun, run_all, run_notebook

__all__ = [
    "KERNEL",
    "NOTEBOOKS",
    "PATH_PARAMETERS",
    "RULES",
    "SUMMARY_METRICS",
    "NotebookError",
    "NotebookRun",
    "check_parameters",
    "kernel_metadata",
    "normalize_notebook",
    "notebook_parameters",
    "parse_value",
    "run_all",
    "run_notebook",
]
