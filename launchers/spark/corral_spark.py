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

Each shard fits the share of its executor that its task was given: it runs
as many iterations at once as the task has CPUs (`spark.task.cpus`, by
`TaskContext.cpus()`), and, when `spark.executor.memoryOverhead` is set
(the memory YARN grants the executor's non-JVM processes, where corral
runs), its iterations' memory caps add up to at most 3/4 of that overhead
divided among the executor's concurrent tasks (`spark.executor.cores` /
`spark.task.cpus`); `--max-workers` or `--memory-budget` after `--` win.

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


def size_of(text: str) -> int:
    """Bytes of a Spark size (`2g`, `512m`, `1024k`, `100`: MiB when bare,
    as Spark reads `memoryOverhead`)."""
    text = text.strip().lower().rstrip("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text) << 20


def task_memory_budget(conf) -> int:
    """A shard's memory budget, bytes, from the executor's memory overhead
    divided among its concurrent tasks (3/4 of the share, as corral takes of
    a machine); 0 when the overhead is not set."""
    overhead = conf.get("spark.executor.memoryOverhead", None)
    if not overhead:
        return 0
    task_cpus = int(conf.get("spark.task.cpus", "1"))
    executor_cores = int(conf.get("spark.executor.cores", "1"))
    tasks = max(1, executor_cores // max(1, task_cpus))
    return size_of(overhead) // tasks // 4 * 3


def share_flags(extra: list, budget: int) -> list:
    """`--max-workers` from the task's CPUs and `--memory-budget` from
    `budget`, unless the user's flags set them."""
    from pyspark import TaskContext

    def given(flag: str) -> bool:
        return any(a == flag or a.startswith(flag + "=") for a in extra)

    flags = []
    if not given("--max-workers"):
        context = TaskContext.get()
        cpus = context.cpus() if context is not None else 1
        flags += ["--max-workers", str(max(1, cpus))]
    if budget and not given("--memory-budget"):
        flags += ["--memory-budget", f"{budget // (1 << 20)}MiB"]
    return flags


def run_shard(index: int, count: int, corral: str, job: str, out: str, extra: list, budget: int = 0) -> tuple:
    """Runs shard `index` of `count`; returns (index, exit code, stderr tail).

    Exit 0 (all succeeded) and 1 (some iterations failed by their own
    code: recorded, and deterministic, so not worth retrying) are results.
    Anything else raises, so that Spark retries the task: 75 (every failure
    was transient, storage's or the host's, after corral's own attempts), a
    signal (a lost node), a crash.
    """
    command = [resolve(corral), "run", resolve(job), "--shard", f"{index}/{count}", "--out", out, "--resume"]
    command += share_flags(extra, budget) + extra
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
        budget = task_memory_budget(spark.sparkContext.getConf())
        results = (
            spark.sparkContext.parallelize(range(count), count)
            .map(lambda k: run_shard(k, count, corral, job, out, extra, budget))
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
