"""Seconds `hotline lint` takes for a large generated flow: menus chained one after the other, each with
two options, a timeout, a failure and a description, until the file has the size asked for.

Each phase is timed on its own (reading the YAML, validating, the graph checks) beside the whole command,
so a slow phase shows. Run:

    .venv/bin/python bench/lint_bench.py               # a 5 MB flow
    .venv/bin/python bench/lint_bench.py --mb 9.5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ivr.checks import Unchecked, check_flows
from ivr.model import Flow
from yamlfile import read_yaml

# the flow generator the big-flow tests use too (tests/support/big_flow.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.big_flow import generate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=5.0, help="size of the generated flow in MB")
    args = parser.parse_args()
    text = generate(args.mb)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.yaml"
        path.write_text(text, encoding="utf-8")
        print(f"{path.stat().st_size / 1024 / 1024:.1f} MB, {text.count('  n')} nodes")
        started = time.perf_counter()
        document = read_yaml(text, str(path))
        read = time.perf_counter()
        flow = Flow.model_validate(document.data)
        validated = time.perf_counter()
        check_flows({"big": flow}, unchecked={"big": Unchecked()}, failed_flows=None)
        checked = time.perf_counter()
        print(f"  read the YAML  {read - started:6.2f} s")
        print(f"  validate       {validated - read:6.2f} s")
        print(f"  graph checks   {checked - validated:6.2f} s")
        started = time.perf_counter()
        hotline = Path(sys.executable).parent / "hotline"
        done = subprocess.run([str(hotline), "lint", str(path)], capture_output=True)
        print(f"hotline lint     {time.perf_counter() - started:6.2f} s, exit {done.returncode}")


if __name__ == "__main__":
    main()
