#!/usr/bin/env python3
"""Minimises a fuzz target's working corpus into the corpus kept in the repository.

    cd fuzz && ./keep-corpus.py decode --behaviours --max 400
               ./keep-corpus.py fold --max 150

1. `cargo fuzz cmin` the working corpus (fuzz/corpus/<target>/): libFuzzer's own
   minimisation, on its full feature set (edges and hit counts).
2. Measure the edges each remaining input covers (a libFuzzer merge with
   `-use_counters=0` and its control file).
3. With --behaviours, keep the smallest input of each behaviour: what `codedeploy-exporter replay`
   prints (rejection reasons and the exposition), with quoted values and digits
   normalised, so inputs that differ only in values count once.
4. Add inputs greedily, the one covering the most edges not yet covered first,
   up to --max files or until no edge is left.
5. Replace tests/fixtures/fuzz/<target>/ with the result and report the edge
   coverage kept.

Needs the fuzz target built (`cargo fuzz build -s none`) and the exporter's
debug binary (`cargo build` in the repository root).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BINARY = os.path.join(ROOT, "target", "debug", "codedeploy-exporter")


def fuzz_binary(target):
    return os.path.join(HERE, "target", "x86_64-unknown-linux-gnu", "release", target)


def coverage(target, scratch, corpus):
    """Edges each input covers: a libFuzzer merge on edges only
    (`-use_counters=0`) of that input alone, read from its control file (a
    merge lists only the features new to its process, hence one per input)."""
    env = dict(os.environ, TMPDIR=os.environ.get("TMPDIR", "/dev/shm"))
    edges = {}
    for name in sorted(os.listdir(corpus)):
        one = os.path.join(scratch, "one")
        out = os.path.join(scratch, "out")
        for d in (one, out):
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
        shutil.copy(os.path.join(corpus, name), one)
        control = os.path.join(scratch, "merge-control")
        if os.path.exists(control):
            os.remove(control)  # an existing control file makes libFuzzer resume that merge
        result = subprocess.run(
            [fuzz_binary(target), "-merge=1", "-use_counters=0", "-max_len=20000",
             f"-merge_control_file={control}", out, one],
            capture_output=True, text=True, env=env,
        )
        if result.returncode != 0:
            sys.exit(f"merge of {name} failed:\n{result.stderr[-2000:]}")
        with open(control) as f:
            features = [line.split()[2:] for line in f if line.startswith("FT ")]
        edges[name] = set(map(int, features[0])) if features else set()
    return edges


def normalise(text):
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "Q", text)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "Q", text)
    return re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", text)


def behaviour(path):
    result = subprocess.run(
        [BINARY, "replay", "--now", "2025-12-20T00:00:00Z", path], capture_output=True, timeout=120
    )
    errors = result.stderr.decode("utf-8", "replace").replace(path, "FILE")
    errors = re.sub(r"^.*?rejected: ", "", errors, flags=re.M)
    samples = "\n".join(
        line for line in result.stdout.decode("utf-8", "replace").splitlines() if not line.startswith("#")
    )
    return result.returncode, normalise(errors), normalise(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("target", choices=["decode", "fold", "store"])
    parser.add_argument("--max", type=int, default=300, help="most files to keep")
    parser.add_argument(
        "--behaviours", action="store_true",
        help="first keep one input per behaviour (good for single messages: decode; a stream's "
        "exposition differs too often for it to help fold and store)",
    )
    parser.add_argument("--no-cmin", action="store_true", help="the working corpus is already minimised")
    args = parser.parse_args()
    working = os.path.join(HERE, "corpus", args.target)
    kept = os.path.join(ROOT, "tests", "fixtures", "fuzz", args.target)

    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    if not args.no_cmin:
        subprocess.run(
            ["cargo", "fuzz", "cmin", "-s", "none", args.target, working, "--", "-max_len=20000"],
            cwd=HERE, env=env, check=True, capture_output=True,
        )
    with tempfile.TemporaryDirectory() as scratch:
        edges = coverage(args.target, scratch, working)
        everything = set().union(*edges.values())
        candidates = sorted(edges, key=lambda f: (os.path.getsize(os.path.join(working, f)), f))

        chosen, seen, covered = [], set(), set()
        for name in candidates if args.behaviours else []:
            signature = behaviour(os.path.join(working, name))
            if signature not in seen:
                seen.add(signature)
                chosen.append(name)
                covered |= edges[name]
        behaviours = len(chosen)
        # Greedy set cover of the remaining edges, biggest gain first.
        rest = [name for name in candidates if name not in set(chosen)]
        while len(chosen) < args.max and rest:
            best = max(rest, key=lambda name: (len(edges[name] - covered), -os.path.getsize(os.path.join(working, name))))
            if not edges[best] - covered:
                break
            chosen.append(best)
            covered |= edges[best]
            rest.remove(best)

        shutil.rmtree(kept, ignore_errors=True)
        os.makedirs(kept)
        for name in chosen:
            shutil.copy(os.path.join(working, name), kept)
    size = sum(os.path.getsize(os.path.join(kept, f)) for f in chosen)
    print(
        f"{args.target}: {len(candidates)} inputs after cmin, {behaviours} behaviours; kept {len(chosen)} "
        f"files ({size} bytes) covering {len(covered)} of {len(everything)} features (edges)"
    )


if __name__ == "__main__":
    main()
