"""PruneScope's Qt front end (PySide6 + pyqtgraph). The engine lives in ``core``.

Importing it asks PyTorch to back big CPU tensors with transparent huge pages
(``THP_MEM_ALLOC_ENABLE``, read by torch at its first CPU allocation; an
explicit ``=0`` in the environment is respected). Freeing a 268 MB tensor made
of 4 KiB pages unmaps 65,536 pages: 20-55 ms in whichever thread drops the last
reference, often the GUI thread when a heatmap lets go of the layer it showed
(``benchmarks/bench_interactions.py``: the longest stalls of apply, paint and
undo). With 2 MiB pages the same free takes about 1 ms. Only allocations of
2 MiB and more are affected, and only where the kernel allows huge pages.
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
