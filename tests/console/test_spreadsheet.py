"""A CSV line's cells checked at once (`line_cells_plain`) say exactly what cell_inert and
csv.writer would say cell by cell."""

import csv
import io
import itertools

from console.spreadsheet import cell_inert, cell_restored, line_cells_plain

CELLS = [
    "plain",
    "",
    "=1",
    "+1",
    "-1",
    "@a",
    "\tx",
    "\rx",
    "'=x",
    "'plain",
    "''",
    "a b",
    'q"uote',
    "new\nline",
    "c\rr",
    "x=1",
    "a-b",
    "naïve",
    "1.5",
]
SAFE = ["plain", "", "a b", "x=1", "a-b", "naïve", "1.5"]


def _written(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


def test_a_line_said_plain_is_what_the_writer_writes_for_its_inert_cells() -> None:
    said_plain = 0
    for cells in itertools.product(CELLS, repeat=3):
        line = ",".join(cells)
        if line_cells_plain(line):
            said_plain += 1
            assert [cell_inert(c) for c in cells] == list(cells), cells
            assert _written(list(cells)) == line + "\r\n", cells
    # Cells with nothing to quote or neutralise are said plain (a check that always said
    # no would pass the loop above and make every export slow).
    assert said_plain >= len(SAFE) ** 3


def test_a_line_with_a_cell_to_change_is_never_plain() -> None:
    for cell in ["=1", "+1", "-1", "@a", "\tx", "\rx", "'=x", 'q"uote', "new\nline", "c\rr"]:
        assert not line_cells_plain(cell), cell
        assert not line_cells_plain(f"a,{cell}"), cell
        assert not line_cells_plain(f"a,{cell},b"), cell


def test_cell_inert_is_undone_on_upload() -> None:
    for cell in CELLS:
        assert cell_restored(str(cell_inert(cell))) == cell
