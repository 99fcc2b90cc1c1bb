"""One BLAS thread per judging thread.

Candidates are judged on a pool with a thread per core (verify.rerank, dedup), and each match is a
matrix product by numpy (geometry.nearest). numpy's OpenBLAS would split every product over all
cores again, and the pool's threads then wait on each other's BLAS threads: on 2 cores, 2 judges
took 0.78 ms a pair with OpenBLAS's threads and 0.46 ms with one each (docs/relevance.md). A process
that judges on a pool calls `one_thread_each` once. Only numpy's own BLAS is limited: FAISS's
(its OpenMP threads build the graph) keeps its threads.
"""

from __future__ import annotations

from pathlib import Path

from threadpoolctl import ThreadpoolController

_limited: object | None = None  # the limit holds while this lives


def numpy_blas(controller: ThreadpoolController) -> list[str]:
    """Paths of the BLAS libraries numpy ships in its wheel (numpy.libs), as threadpoolctl finds them."""
    return [lib.filepath for lib in controller.lib_controllers
            if lib.user_api == "blas" and Path(lib.filepath).parent.name.startswith("numpy")]  # fmt: skip


def one_thread_each() -> bool:
    """Limit numpy's BLAS to one thread a call in this process (BLAS keeps one setting for all
    threads); False where numpy's BLAS is not one it ships (a system BLAS: left as it is)."""
    global _limited
    if _limited is None:
        controller = ThreadpoolController()
        paths = numpy_blas(controller)
        if not paths:
            return False
        _limited = controller.select(filepath=paths).limit(limits=1)
    return True
