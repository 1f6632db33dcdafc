"""seed-model-py run natively under CPython by the SDK's fake host
(``corral_guest.testing.MemoryHost``) over a config CSV, for corral-bench's
Python rows: the same transform, the same SDK, no sandbox.

    python3 native_seed.py SDK_DIR TRANSFORM_DIR CONFIG.csv ITERATIONS

The config is read by pyarrow (untimed) into Arrow IPC batches of 65,536
rows, decoded by the SDK's own codec, as corral's host hands them to a
guest. Prints one JSON object: for each iteration its seconds, the fake
host's share of them (filtering, IPC encoding and decoding: the native
host's work inside corral) and its rows.
"""

import json
import sys
import time

sdk, transform, config, iterations = sys.argv[1:5]
sys.path[:0] = [sdk, transform]

import pyarrow as pa  # noqa: E402
import pyarrow.csv as csv  # noqa: E402

import app  # noqa: E402
from corral_guest import ipc  # noqa: E402
from corral_guest.testing import MemoryHost  # noqa: E402

loaded = time.perf_counter()
table = csv.read_csv(config)
sink = pa.BufferOutputStream()
with pa.ipc.new_stream(sink, table.schema) as writer:
    writer.write_table(table, max_chunksize=65536)
_, batches = ipc.read_stream(sink.getvalue().to_pybytes())
host = MemoryHost(batches, params={"param1": 1.5, "param2": 2.0}, job_name="bench")
load_seconds = time.perf_counter() - loaded

runs = []
for n in range(int(iterations)):
    host_before = host.host_seconds
    started = time.perf_counter()
    result = host.run(app.run, n)
    seconds = time.perf_counter() - started
    runs.append({"iteration": n, "seconds": seconds, "host_seconds": host.host_seconds - host_before, "rows": result.num_rows})
print(json.dumps({"load_seconds": load_seconds, "rows": table.num_rows, "iterations": runs}))
