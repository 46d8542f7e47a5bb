"""Shared fixtures: generated audio only (no downloads), MLflow and caches under tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One thread per library in each test process (set before numpy, scikit-learn, TensorFlow or onnxruntime load):
# the suite runs on two worker processes (pytest -n 2) on two cores, and every library sizing its thread pool to
# the machine made them fight over the cores (a HistGradientBoosting fit on 450 rows took 9-20 s instead of
# 3-4 s with OMP_NUM_THREADS=1, measured here with another test run beside it). Subprocesses inherit it.
# TensorFlow runs one op at a time, as genrelib's seed_everything sets it for a repeatable fit (issue 21 #3b); set
# here, before TensorFlow starts in a test process, so that a fit after other TensorFlow use gets it too.
for _threads in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
):
    os.environ.setdefault(_threads, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gtzan"
TINY_GENRES = ("classical", "metal", "reggae")


def needs_shared():
    """Skip a test when ../shared/data/gtzan (real GTZAN material) is absent."""
    return pytest.mark.skipif(not SHARED.is_dir(), reason=f"real GTZAN material not found at {SHARED}")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    (tmp_path / "mlruns").mkdir(exist_ok=True)


@pytest.fixture
def exited_pid() -> int:
    """The process id of a process that has already exited: the ``genrelib.pid`` of a run whose process is gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


@pytest.fixture
def experiment_id() -> str:
    """genrelib's MLflow experiment in this test's store, set up as genrelib sets it up."""
    import mlflow

    from genrelib import tracking

    tracking.setup()
    return mlflow.get_experiment_by_name(tracking.EXPERIMENT).experiment_id


def sine(freq=440.0, seconds=1.0, sr=22050, amp=0.5, channels=1):
    """A sine tone, shape (n,) or (n, channels)."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y


@pytest.fixture(scope="session")
def tiny_tree(tmp_path_factory) -> Path:
    """A GTZAN-shaped tree: 3 audibly different genres x 4 clips of 4 s (synthetic demo music, ``overlap=0``:
    distinct genres and clean production, so that tests of learning can learn from 12 short clips)."""
    from genrelib.datasets import demo

    root = tmp_path_factory.mktemp("tiny") / "genres"
    demo.make_demo(root, per_genre=4, seconds=4.0, seed=1, genres=TINY_GENRES, n_jobs=1, overlap=0.0)
    return root


@pytest.fixture
def write(tmp_path):
    """Write a signal to tmp_path/name with soundfile; returns the path."""

    def _write(name, y, sr=22050, **kw):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, y, sr, **kw)
        return p

    return _write


def gtzan_ids(genre: str, part: str, n: int) -> list[str]:
    """The first ``n`` ids of ``genre`` in a fault-filtered list (``part``: train, valid, test), or, for
    ``part="out"``, GTZAN names of ``genre`` that are in none of the lists (replicas, mislabelings)."""
    from genrelib.datasets.splits import gtzan_split_lists

    lists = gtzan_split_lists()
    if part == "out":
        listed = {i for ids in lists.values() for i in ids}
        ids = [f"{genre}/{genre}.{k:05d}.wav" for k in range(100) if f"{genre}/{genre}.{k:05d}.wav" not in listed]
    else:
        ids = [i for i in lists[part] if i.startswith(f"{genre}/")]
    assert len(ids) >= n, (genre, part, n)
    return ids[:n]


@pytest.fixture
def gtzan_tree(tmp_path):
    """Write a tree of short synthetic clips under GTZAN file names: ``gtzan_tree({"metal": {"train": 2, "test": 1}})``.

    Parts are ``train``, ``valid``, ``test`` (names from the fault-filtered lists) and ``out`` (GTZAN names in no
    list). Returns the root; the clips are audibly different per genre (demo music), 3 s long.
    """
    from genrelib.datasets import demo

    def _make(plan: dict[str, dict[str, int]], name: str = "gtzan", seconds: float = 3.0) -> Path:
        root = tmp_path / name
        for genre, parts in plan.items():
            for part, n in parts.items():
                for tid in gtzan_ids(genre, part, n):
                    number = int(Path(tid).stem.split(".")[-1])
                    y = demo.render(genre, seconds, seed=demo.track_seed(5, genre, number))
                    path = root / tid
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(path, y, 22050, subtype="PCM_16")
        return root

    return _make


#: Test modules whose tests share an expensive module fixture (a served model, the app, a tracking server, a Dask
#: cluster, trained models): under pytest-xdist each runs whole on one worker, so the fixture is made once.
#: (pytest-xdist's own ``--dist loadgroup`` with ``xdist_group`` marks groups nothing under pytest 9.2 and xdist
#: 3.8: xdist renames ``item._nodeid`` while pytest 9 reads ``item._id``; seen here, each worker set up its own.)
ONE_WORKER_MODULES = {
    "tests/app/test_app.py",
    "tests/evaluation/test_evaluate.py",
    "tests/features/test_distributed.py",
    "tests/inference/test_predict.py",
    "tests/inference/test_serving.py",
    "tests/tracking/test_server.py",
    "tests/training/test_ensemble.py",
    "tests/training/test_streaming.py",
}


def pytest_xdist_make_scheduler(config, log):
    """``make test`` (``-n 2 --dist loadgroup``): tests spread over the workers one by one, except the modules of
    :data:`ONE_WORKER_MODULES`, each sent whole to one worker."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return OneWorkerModules(config, log)


#: The longest tests and modules of :data:`ONE_WORKER_MODULES` (``pytest --durations``: 40-130 s each on the 2
#: loaded cores), started first, longest first, so that neither worker is left running one of them alone at the
#: end of the suite (``make test`` passes ``--no-loadscope-reorder``: xdist keeps this order).
LONGEST_FIRST = (
    "tests/test_notebooks.py::test_make_run_all_pipeline_on_tiny_data",
    "tests/features/test_distributed.py",
    "tests/inference/test_serving.py",
    "tests/test_notebooks.py::test_run_all_with_the_musicnn_family",
    "tests/inference/test_predict.py",
    "tests/test_bench.py::test_make_bench_runs_every_group_at_tiny_sizes",
    "tests/app/test_app.py",
    "tests/cli/test_cli.py::test_train_gtzan_ff_on_partial_gtzan_refused_unless_forced",
    "tests/tracking/test_registry.py::test_the_experiment_opens_on_its_runs_in_the_mlflow_ui",
    "tests/training/test_tune.py::test_notebook_03_with_augmentation_and_a_small_sweep",
    "tests/cli/test_cli.py::test_train_and_evaluate_commands",
)


def pytest_collection_modifyitems(config, items):
    """The tests and modules of :data:`LONGEST_FIRST` first, in that order; the others keep theirs."""
    rank = {nodeid: i for i, nodeid in enumerate(LONGEST_FIRST)}

    def key(item) -> int:
        return rank.get(item.nodeid, rank.get(item.nodeid.split("::", 1)[0], len(rank)))

    items.sort(key=key)
