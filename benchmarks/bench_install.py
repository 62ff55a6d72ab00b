"""Install cost of a fresh machine: the llama-cpp-python build alone, or `make quickstart` end to end.

Every measurement starts from an empty pip cache (a new PIP_CACHE_DIR) and a new virtualenv, as a
newcomer's first `make quickstart` does. It prints wall time, the CPU time of every process the
command started (user + sys; on a shared machine this moves far less with the load than the wall
time does), and the load average sampled through the run: compare wall times only at like loads.

    # the llama-cpp-python wheel alone, with the project's build flags (Makefile LLAMA_CMAKE_ARGS)
    python benchmarks/bench_install.py wheel
    # ... with other flags, e.g. the package defaults
    python benchmarks/bench_install.py wheel --cmake-args=""
    # a clean clone of HEAD, then `make quickstart`, timed per step (install, ingest, ask, run)
    python benchmarks/bench_install.py quickstart

`wheel` keeps the CMake build tree and prints the compile time per part of llama.cpp from
ninja's log. Nothing here gates a test. Needs network access to the package index, like pip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LLAMA_REQ = "llama-cpp-python==0.3.36"


def _makefile_cmake_args(work: Path) -> str:
    """The Makefile's LLAMA_CMAKE_ARGS, with the CMake file it injects written under `work`."""
    out = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "llama-cmake-args", f"VENV={work / 'make'}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class LoadSampler:
    """The 1-minute load average every few seconds while a command runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every_s,), daemon=True)

    def _loop(self, every_s: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "n/a"
        s = sorted(self.samples)
        return f"min {s[0]:.1f} / median {s[len(s) // 2]:.1f} / max {s[-1]:.1f} ({len(s)} samples)"


def timed(cmd: list[str] | str, *, env: dict[str, str], cwd: Path, log: Path) -> dict[str, float]:
    """Run `cmd`, appending its output to `log`; wall and children's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {cmd if isinstance(cmd, str) else shlex.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, shell=isinstance(cmd, str), check=False
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {cmd}; see {log}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def fresh_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_CACHE_DIR"] = str(work / "pip-cache")  # empty: nothing built or downloaded before
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


# Which library a build step's output belongs to: the first marker found in its path wins.
_BUILD_PARTS = (
    ("/tools/mtmd/", "mtmd (multimodal)"),
    ("/cpp-httplib/", "cpp-httplib"),
    ("/common/", "llama-common"),
    ("/ggml-cpu/", "ggml-cpu"),
    ("/ggml/", "ggml-base"),
    ("/src/", "libllama"),
)


def ninja_breakdown(build_dir: Path) -> dict[str, float]:
    """Seconds of compile per part of the tree, from ninja's log (wall per job, summed)."""
    logs = list(build_dir.rglob(".ninja_log"))
    parts: dict[str, float] = defaultdict(float)
    if not logs:
        return {}
    for line in logs[0].read_text().splitlines():
        if line.startswith("#"):
            continue
        start_ms, end_ms, _, output, _ = line.split("\t")
        seconds = (int(end_ms) - int(start_ms)) / 1000
        part = next((name for marker, name in _BUILD_PARTS if marker in output), "other (links, vendor)")
        parts[part] += seconds
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def cmd_wheel(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="qs-wheel-", dir=args.tmp))
    venv = work / "venv"
    env = fresh_env(work)
    log = work / "log.txt"
    subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
    timed([str(venv / "bin/pip"), "install", "-q", "--upgrade", "pip"], env=env, cwd=work, log=log)
    cmake_args = _makefile_cmake_args(work) if args.cmake_args is None else args.cmake_args
    env["CMAKE_ARGS"] = cmake_args
    cmd = [str(venv / "bin/pip"), "wheel", "-v", "--no-deps", "-w", str(work / "wheel")]
    cmd += ["-C", f"build-dir={work / 'build'}", LLAMA_REQ]
    with LoadSampler() as load:
        t = timed(cmd, env=env, cwd=work, log=log)
    wheel = next((work / "wheel").glob("*.whl"))
    return {
        "what": f"pip wheel {LLAMA_REQ}, empty pip cache",
        "cmake_args": cmake_args,
        **t,
        "load": load.summary(),
        "wheel_mb": round(wheel.stat().st_size / 1e6, 1),
        "compile_s_by_part": ninja_breakdown(work / "build"),
        "dir": str(work),
    }


def cmd_quickstart(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="qs-clone-", dir=args.tmp))
    clone = work / "workbench"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", args.ref], check=True)
    for path in args.overlay:  # uncommitted changes to measure, copied from this tree
        (clone / path).write_bytes((ROOT / path).read_bytes())
    env = fresh_env(work)
    log = work / "log.txt"
    make = ["make", f"PYTHON={args.python}"]
    steps: dict[str, dict[str, float]] = {}
    with LoadSampler() as load:
        started = time.perf_counter()
        # `make quickstart` step by step, so each step gets its own time.
        steps["install"] = timed([*make, args.install_target], env=env, cwd=clone, log=log)
        py = [str(clone / ".venv/bin/python"), "-m", "workbench"]
        steps["ingest"] = timed([*py, "ingest", "experiments/quickstart.yaml"], env=env, cwd=clone, log=log)
        question = "Who picked up the remaining four Premier League packages?"
        steps["ask"] = timed([*py, "ask", "experiments/quickstart.yaml", question], env=env, cwd=clone, log=log)
        first = time.perf_counter() - started
        steps["run"] = timed(
            [*py, "run", "experiments/quickstart.yaml", "--dataset", "squad_disfl", "--limit", "20"],
            env=env,
            cwd=clone,
            log=log,
        )
        total = time.perf_counter() - started
    answer = re.findall(r"^answer:\s*(.*)$", log.read_text(), re.M)
    return {
        "what": f"clean clone of {args.ref}, empty pip cache, make {args.install_target} + quickstart steps",
        "overlay": args.overlay,
        "steps": steps,
        "first_result_s": round(first, 1),
        "total_s": round(total, 1),
        "answer": answer[-1] if answer else None,
        "load": load.summary(),
        "dir": str(work),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default="python3.11")
    parser.add_argument("--tmp", default="/tmp", help="where the fresh venvs, caches and clones go")
    sub = parser.add_subparsers(dest="command", required=True)
    wheel = sub.add_parser("wheel", help="build the llama-cpp-python wheel alone")
    wheel.add_argument("--cmake-args", help="CMAKE_ARGS for the build (default: the Makefile's LLAMA_CMAKE_ARGS)")
    wheel.set_defaults(func=cmd_wheel)
    qs = sub.add_parser("quickstart", help="clean clone + make quickstart, timed per step")
    qs.add_argument("--ref", default="HEAD", help="the commit to clone")
    qs.add_argument("--install-target", default="install-quickstart", help="the make target that installs")
    qs.add_argument("--overlay", nargs="*", default=[], help="files of this tree to copy over the clone")
    qs.set_defaults(func=cmd_quickstart)
    args = parser.parse_args()
    print(f"uptime before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    result = args.func(args)
    print(f"uptime after:  {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
