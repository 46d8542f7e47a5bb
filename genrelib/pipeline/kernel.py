"""The notebooks' kernel metadata: what JupyterLab writes into a notebook it opens, so that committed notebooks
open unmodified (``scripts/normalize_notebooks.py``)."""

from __future__ import annotations

from pathlib import Path

from genrelib.pipeline.parameters import NotebookError

#: The Jupyter kernel the notebooks are committed for (``make env`` installs it into the environment).
KERNEL = "genrelib"


def kernel_metadata(kernel: str = KERNEL, *, timeout: float = 60.0) -> dict:
    """The notebook metadata JupyterLab writes into a notebook it opens on ``kernel``.

    JupyterLab replaces a notebook's ``kernelspec`` and ``language_info`` with the running kernel's as soon as the
    kernel starts, and marks the notebook modified when they differ in anything (the Python version included);
    committed notebooks carry exactly these values so that opening one changes nothing. The kernel is started
    here and asked (``kernel_info``), as JupyterLab does, then shut down.

    Parameters
    ----------
    kernel : str
        Kernel name (``jupyter kernelspec list``).
    timeout : float
        Seconds to wait for the kernel to start and answer.

    Returns
    -------
    dict
        ``{"kernelspec": {"display_name", "language", "name"}, "language_info": {...}}``.

    Raises
    ------
    NotebookError
        When no kernel of that name is installed.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import start_new_kernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel as exc:
        raise NotebookError(
            f"no Jupyter kernel named {kernel!r}; install it with `make env`, or `.venv/bin/python "
            f"-m ipykernel install --sys-prefix --name {kernel} --display-name 'Python ({kernel})'`"
        ) from exc
    km, kc = start_new_kernel(
        kernel_name=kernel, startup_timeout=timeout, extra_arguments=["--IPKernelApp.log_level=CRITICAL"]
    )
    try:
        info = kc.kernel_info(reply=True, timeout=timeout)["content"]["language_info"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {
        "kernelspec": {"display_name": spec.display_name, "language": spec.language, "name": kernel},
        "language_info": info,
    }


def normalize_notebook(path: str | Path, metadata: dict, *, write: bool = True) -> bool:
    """Put a notebook in its committed form: ``metadata`` (from :func:`kernel_metadata`), no outputs and no
    execution counts, nbformat 4.5 with an id on every cell, written as Jupyter writes it.

    Parameters
    ----------
    path : path
        The ``.ipynb`` file.
    metadata : dict
        Top-level metadata keys to set (others are kept).
    write : bool
        Rewrite the file when it differs; False only reports.

    Returns
    -------
    bool
        Whether the file differed from its committed form.
    """
    import uuid

    import nbformat

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    nb.metadata.update(metadata)
    for cell in nb.cells:
        if not cell.get("id"):
            cell.id = uuid.uuid4().hex[:8]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    new = nbformat.writes(nb) + "\n"
    if new == text:
        return False
    if write:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    return True
