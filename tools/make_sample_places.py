"""Write infra/places/ankang-sample.csv: sample place names (示例) for every code the county generator can make.

No source at hand lists Ankang's township and village names with their statistical codes
(统计用区划代码), so the packaged places table is sample data: the generator's own name lists,
assigned to codes in order, marked 示例 in each row's ``source``. A county replaces it with its
own file (``LEDGER_PLACES_FILE``). Run again after changing the generator's name lists::

    .venv/bin/python tools/make_sample_places.py
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from entrypoints.simulation import county  # noqa: E402
from infra.places import HEADER, SAMPLE_PLACES  # noqa: E402
from ledger.domain.places import ANKANG_REGIONS  # noqa: E402

SOURCE = "示例数据：演示用，非官方区划名称（sample, not official names）"
#: Villages per township the generator draws at most (county.build_places): street, town, township.
VILLAGES = {"STREET": 6, "TOWN": 9, "TOWNSHIP": 6}


def rows() -> list[tuple[str, str, str, str, str]]:
    out = []
    for region in ANKANG_REGIONS:
        hanbin = region == "610902"
        plan = [("STREET", 1, county._HANBIN_STREETS if hanbin else county._STREETS),
                ("TOWN", 100, county._HANBIN_TOWNS if hanbin else county._TOWNS),
                ("TOWNSHIP", 200, county._TOWNSHIPS)]
        k = 0
        for kind, first, names in plan:
            for i, name in enumerate(names):
                code = f"{region}{first + i:03d}"
                out.append((code, name, "", "", SOURCE))
                for j in range(VILLAGES[kind]):
                    village = county._VILLAGES[(k * 7 + j) % len(county._VILLAGES)]
                    if kind == "STREET":
                        out.append((f"{code}{j + 1:03d}", f"{village}社区", "", "", SOURCE))
                    elif kind == "TOWN" and j == 0:
                        out.append((f"{code}001", f"{name[:-1]}社区", "", "", SOURCE))
                    else:
                        out.append((f"{code}{200 + j:03d}", f"{village}村", "", "", SOURCE))
                k += 1
    return out


def main() -> int:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows())
    SAMPLE_PLACES.write_text(buf.getvalue(), encoding="utf-8")
    print(f"{SAMPLE_PLACES.relative_to(ROOT)}: {len(buf.getvalue().splitlines()) - 1} names")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
