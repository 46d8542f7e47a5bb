"""The notebooks' parameters: what each notebook declares, and the checks of overrides (type, finite, range,
existing paths) before any notebook runs."""

from __future__ import annotations

from pathlib import Path

from genrelib.errors import GenrelibError

NOTEBOOKS = ("01_eda", "02_features", "03_train", "04_evaluate", "05_personal_test", "06_compare")


class NotebookError(GenrelibError):
    """A notebook cell raised; the message names the notebook, the cell and the error."""


def parse_value(text: str):
    """A command-line parameter value as papermill reads ``-p``: int, float, bool, None or string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def notebook_parameters(path: str | Path) -> dict:
    """The parameters a notebook declares in its ``parameters`` cell."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(path)))


#: How a declared type is described in an error message.
_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}


def _convert(value, type_name: str):
    """``value`` (a command line's text, or a Python value) as the declared type; ValueError when it is not one.

    An int is a float; a bool is not a number. Annotations other than int, float, bool and str are not checked
    (text is read as papermill's ``-p`` reads it).
    """
    if type_name in ("int", "float"):
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) or (type_name == "float" and isinstance(value, float)):
            return value
        elif isinstance(value, str):
            return int(value.strip()) if type_name == "int" else float(value.strip())
    elif type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif type_name == "str":
        if isinstance(value, str):
            return value
    else:
        return parse_value(value) if isinstance(value, str) else value
    raise ValueError(f"{value!r} is not {type_name}")


def _check(parameters: dict, declared: dict[str, dict], *, must_be_declared: bool) -> dict:
    """Check and convert ``parameters`` against the parameters each notebook of ``declared`` declares."""
    import difflib

    out = {}
    for key, value in parameters.items():
        owners = [nb for nb, params in declared.items() if key in params]
        if not owners:
            if must_be_declared:
                names = sorted({k for params in declared.values() for k in params})
                close = difflib.get_close_matches(key, names, n=1)
                which = (
                    f"notebook {next(iter(declared))}"
                    if len(declared) == 1
                    else f"any of the notebooks {', '.join(declared)}"
                )
                raise NotebookError(
                    f"unknown notebook parameter {key!r} (value {value!r}): not declared by {which}"
                    + (f"; did you mean {close[0]!r}?" if close else "")
                    + f" (declared: {', '.join(names)})"
                )
            out[key] = value
            continue
        types = {nb: declared[nb][key]["inferred_type_name"] for nb in owners}
        converted, ok = None, False
        for t in dict.fromkeys(types.values()):  # the first reading that every declaring notebook accepts
            try:
                converted = _convert(value, t)
                for u in types.values():
                    _convert(converted, u)
            except (TypeError, ValueError):
                continue
            ok = True
            break
        if not ok:
            nb, t = next((nb, t) for nb, t in types.items() if not _accepts(value, t))
            decl = f"{key}: {t} = {declared[nb][key]['default']}"
            same = [n for n, u in types.items() if u == t]
            raise NotebookError(
                f"notebook parameter {key!r} must be {_TYPE_WORDS.get(t, t)} ({t}), as {', '.join(same)} "
                f"declare{'s' if len(same) == 1 else ''} it ({decl}); got {value!r}"
            )
        why = _out_of_range(key, converted)
        if why:
            raise NotebookError(f"notebook parameter {key!r} {why}, got {value!r}")
        out[key] = converted
    return out


def _finite(low: float, *, low_open: bool = False, high: float | None = None, high_open: bool = False):
    import math

    def ok(v) -> bool:
        return (
            math.isfinite(v)
            and (v > low if low_open else v >= low)
            and (high is None or (v < high if high_open else v <= high))
        )

    return ok


_COUNT = (lambda v: v >= 0, "must be a whole number >= 0")
_POSITIVE = (lambda v: v >= 1, "must be a whole number >= 1")
_AMOUNT = (_finite(0), "must be a finite number >= 0")
_FAMILIES = ("seed_cnn", "mel_cnn", "crnn", "summary", "musicnn")

#: What the notebooks' parameters allow beyond their type: name -> (test of the converted value, what is allowed).
#: A value that fails is refused before any notebook runs.
RULES: dict[str, tuple] = {
    "epochs": _POSITIVE,
    "batch_size": _POSITIVE,
    "patience": _COUNT,
    "seed": (lambda v: 0 <= v <= 2**32 - 1, "must be a whole number in [0, 4294967295]"),
    "n_jobs": (lambda v: v >= 0, "must be a whole number >= 0 (0: all CPUs)"),
    "n_mfcc": _POSITIVE,
    "example_index": _COUNT,
    "time_masks": _COUNT,
    "freq_masks": _COUNT,
    "aug_copies": _COUNT,
    "sweep_trials": _COUNT,
    "top_tags": _COUNT,
    "n_confusions": _COUNT,
    "mixup": _AMOUNT,
    "gain_db": _AMOUNT,
    "noise_std": _AMOUNT,
    "pitch_shift": _AMOUNT,
    "hop_seconds": (_finite(0), "must be a finite number of seconds >= 0 (0: no overlap)"),
    "time_stretch": (_finite(0, high=1, high_open=True), "must be a finite number in [0, 1)"),
    "family": (lambda v: v in _FAMILIES, f"must be one of {', '.join(_FAMILIES)}"),
    "kind": (lambda v: v in ("", "mfcc", "mel", "summary", "musicnn"), 'must be mfcc, mel, summary, musicnn or ""'),
    "map_method": (lambda v: v in ("pca", "tsne"), "must be pca or tsne"),
    "split": (lambda v: v in ("random", "gtzan-ff"), "must be random or gtzan-ff"),
    "part": (lambda v: v in ("", "train", "valid", "test"), 'must be train, valid, test or "" (the whole folder)'),
    "data_dir": (lambda v: v == "" or Path(v).expanduser().is_dir(), "must be an existing folder"),
    "personal_dir": (lambda v: Path(v).expanduser().is_dir(), "must be an existing folder"),
    "split_file": (lambda v: v == "" or Path(v).expanduser().exists(), 'must be an existing file or folder (or "")'),
}


def _out_of_range(key: str, value) -> str | None:
    """What :data:`RULES` allows for ``key`` when ``value`` is not allowed; None when it is (or no rule applies)."""
    rule = RULES.get(key)
    if rule is None:
        return None
    test, allowed = rule
    try:
        return None if test(value) else allowed
    except (TypeError, ValueError):
        return allowed


def _accepts(value, type_name: str) -> bool:
    try:
        _convert(value, type_name)
    except (TypeError, ValueError):
        return False
    return True


def check_parameters(
    parameters: dict,
    notebooks: tuple[str, ...] | list[str] = NOTEBOOKS,
    *,
    notebooks_dir: str | Path = "notebooks",
    must_be_declared: bool = True,
) -> dict:
    """Check notebook overrides before anything runs; return them converted to the declared types.

    Each name must be declared by at least one of ``notebooks`` (a name that only some declare is fine: each
    notebook takes what it declares), and each value must fit the type annotation of every notebook that declares
    it (``epochs: int = 30``): text from a command line is converted ("5" -> 5; "true" -> True), an int is
    accepted for a float, and a value that cannot be read as the type is refused. Names whose annotation is not
    int, float, bool or str are not type-checked.

    Parameters
    ----------
    parameters : dict
        Name -> value (text, as ``-p NAME VALUE`` gives it, or a Python value).
    notebooks : sequence of str
        The notebooks that will run (for ``genrelib notebook NAME``: just that one).
    notebooks_dir : path
    must_be_declared : bool
        Refuse a name that none of ``notebooks`` declares (else pass it on unchecked).

    Raises
    ------
    NotebookError
        For an unknown name (naming the notebooks and the declared names, with the closest one) or a value of the
        wrong type (naming the parameter, the notebooks that declare it, the declared type and the value).
    """
    declared = {}
    for name in notebooks:
        src = Path(notebooks_dir) / f"{name}.ipynb"
        if not src.exists():
            raise NotebookError(f"notebook {src} not found; run from the project root or pass --notebooks-dir")
        declared[name] = notebook_parameters(src)
    return _check(parameters, declared, must_be_declared=must_be_declared)
