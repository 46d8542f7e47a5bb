"""Write the committed form of the notebooks: the genrelib kernel's metadata, no outputs, cell ids.

JupyterLab marks a notebook modified as soon as it opens when the notebook's kernelspec or language_info differ
from the running kernel's (issue 10 #10). This script asks the kernel (as JupyterLab does) and rewrites the
notebooks that differ; tests/test_notebooks.py fails when a committed notebook is not in this form.

Usage: .venv/bin/python scripts/normalize_notebooks.py [--check] [NOTEBOOK.ipynb ...]
"""

import argparse
import sys
from pathlib import Path

from genrelib.pipeline import KERNEL, NOTEBOOKS, kernel_metadata, normalize_notebook

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, default=[ROOT / "notebooks" / f"{n}.ipynb" for n in NOTEBOOKS]
    )
    parser.add_argument("--check", action="store_true", help="only list the notebooks that differ (exit 1 if any)")
    parser.add_argument("--kernel", default=KERNEL)
    args = parser.parse_args()
    meta = kernel_metadata(args.kernel)
    print(
        f"kernel {args.kernel}: {meta['kernelspec']['display_name']}, "
        f"{meta['language_info']['name']} {meta['language_info']['version']}"
    )
    changed = [p for p in args.notebooks if normalize_notebook(p, meta, write=not args.check)]
    for p in changed:
        print(f"{'differs' if args.check else 'rewrote'}: {p}")
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
