"""``read_raw`` on one input folder, printing whether it is accepted or the refusal's first words.

Run under ``/usr/bin/time -v`` to see the peak memory of reading (or refusing) a folder, e.g.
one whose ``population.csv`` is a single 96 MB line or holds a 1 GB value
(``docs/performance-run.md``, input bounds)::

    /usr/bin/time -v python benchmarks/bounds_probe.py FOLDER
"""

import sys
from pathlib import Path

from socialsearch.errors import InputError
from socialsearch.station.extracts import read_raw

try:
    read_raw(Path(sys.argv[1]))
    print("accepted")
except InputError as exc:
    print("refused:", str(exc)[:300])
