"""Runs a corral job over a Spark cluster (an EMR step, say).

The job's iterations are split into N shards (`corral run --shard K/N`); one
Spark task runs the `corral` binary on each shard, so Spark's executors,
dynamic allocation and task retries do the spreading. Every shard runs with
`--resume`, so a retried task (a lost executor, a reclaimed spot node)
carries over the iterations its earlier attempt committed instead of
redoing them. When all tasks are done the driver runs
`corral manifest merge OUT` and, like the PySpark job it replaces, fails the
Spark job if any iteration failed.

    spark-submit --files corral,job.toml launchers/spark/corral_spark.py \\
        --shards 16 --out s3://bucket/runs/2026-11-24 job.toml

Exit codes: 0 every iteration succeeded; 1 some failed (or a shard could
not finish after Spark's retries); 2 bad input.
"""

import argparse
import os
import shutil
import subprocess
import sys

from pyspark import SparkFiles
from pyspark.sql import SparkSession

# How much of a shard's stderr to bring back to the driver.
TAIL = 4000


def resolve(path: str) -> str:
    """A path as given if it exists here, else a program on PATH, else the
    file shipped with --files."""
    if os.path.exists(path):
        return os.path.abspath(path)
    if os.sep not in path and shutil.which(path):
        return shutil.which(path)
    return SparkFiles.get(os.path.basename(path))


def run_shard(index: int, count: int, corral: str, job: str, out: str, extra: list) -> tuple:
    """Runs shard `index` of `count`; returns (index, exit code, stderr tail).

    Exit 0 (all succeeded) and 1 (some iterations failed: recorded, and
    deterministic, so not worth retrying) are results. Anything else (killed
    by a signal, bad input, a crash) raises, so that Spark retries the task.
    """
    command = [resolve(corral), "run", resolve(job), "--shard", f"{index}/{count}", "--out", out, "--resume", *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    tail = done.stderr[-TAIL:]
    if done.returncode in (0, 1):
        return (index, done.returncode, tail)
    raise RuntimeError(f"corral shard {index}/{count} exited with {done.returncode}: {tail}")


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", help="the job file (shipped with --files, or a path every executor sees)")
    parser.add_argument("--out", required=True, help="the output directory every executor writes to, e.g. s3://bucket/run")
    parser.add_argument("--shards", type=int, required=True, help="how many shards (Spark tasks)")
    parser.add_argument("--corral", default="corral", help="the corral binary (shipped with --files, or a path)")
    parser.add_argument("--master", help="Spark master, e.g. local[2,4] (default: spark-submit's)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="after --, more `corral run` flags")
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra

    builder = SparkSession.builder.appName(f"corral {os.path.basename(args.job)}")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        count, corral, job, out = args.shards, args.corral, args.job, args.out
        results = (
            spark.sparkContext.parallelize(range(count), count)
            .map(lambda k: run_shard(k, count, corral, job, out, extra))
            .collect()
        )
        for index, code, tail in sorted(results):
            print(f"shard {index}/{count}: exit {code}", flush=True)
            if code != 0:
                print(tail, file=sys.stderr)
        merged = subprocess.run([resolve(corral), "manifest", "merge", out])
    finally:
        spark.stop()
    if merged.returncode != 0:
        print(f"corral: iterations failed or a shard is missing (merge exited {merged.returncode})", file=sys.stderr)
        return 1 if merged.returncode == 1 else merged.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
