"""The judges' BLAS limit: numpy's OpenBLAS runs one thread a call, FAISS's threads are left alone
(they build the graph). Run in a child process: the limit is process-wide and would hold for the
rest of the test session."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, faiss
from threadpoolctl import ThreadpoolController
from lookalike.verify import blas
before = faiss.omp_get_max_threads()
limited = blas.one_thread_each()
controller = ThreadpoolController()
print(json.dumps({"limited": limited, "numpy": [lib.num_threads for lib in controller.lib_controllers
                  if lib.filepath in blas.numpy_blas(controller)], "faiss": [before, faiss.omp_get_max_threads()]}))
"""


def test_numpy_blas_runs_one_thread_and_faiss_keeps_its_own():
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                           env={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})  # fmt: skip
    assert child.returncode == 0, child.stderr
    found = json.loads(child.stdout)
    assert found["limited"] and found["numpy"] == [1]
    assert found["faiss"] == [2, 2]
