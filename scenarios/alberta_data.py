"""Loader for Alberta's public school-level diploma examination results (xlsx or extract).

Reads the official ``diploma-multiyear-sch-list-annual.xlsx`` table (any edition: year
columns spelled ``2016 Sch Students Writing`` or ``2016Sch Students Writing``, and
``2012SchStudents Writing`` in the oldest), turns it into a tidy table with one row per
(course, school, year), and caches that table as Parquet, because reading the xlsx takes
several seconds. Suppressed cells (``n/a``) become missing values, codes stay zero-padded
strings, and the footnote rows at the bottom are dropped.

The package ships the Mathematics 30-1, 2016 rows of that table as a small CSV
(:data:`EXTRACT`, made by :func:`write_extract`; source, licence and the source file's
SHA-256 in ``scenarios/data/README.md``), so the ``alberta`` scenario needs no download.
:func:`load` reads either an official xlsx or such an extract.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from importlib import resources
from pathlib import Path

import pandas as pd

IDENTITY = (
    "Diploma Course",
    "Authority Type",
    "Authority Code",
    "Authority Name",
    "School Code",
    "School Name",
)
MEASURES = {
    "Students Writing": "writers",
    "Exam Average %": "exam_mean",
    "Exam Standard Deviation %": "exam_sd",
}
"""Per-year columns every edition has -> tidy column."""
OPTIONAL = {"Exam Mark % Acc": "acceptable_pct"}
"""Per-year columns read when present (share of writers at the acceptable standard, %)."""
COLUMNS = (
    "course",
    "authority_type",
    "authority_code",
    "authority_name",
    "school_code",
    "school_name",
    "year",
    *MEASURES.values(),
    *OPTIONAL.values(),
)
"""Columns of the tidy table and of an extract."""
EXTRACT_COURSE, EXTRACT_YEAR = "Mathematics 30-1", 2016
EXTRACT = resources.files("scenarios") / "data" / "alberta-mathematics-30-1-2016.csv"
"""The shipped extract: every Mathematics 30-1 school with 2016 results (the scenario's default)."""
_CACHE_VERSION = 2  # bump when the tidy table changes (2: acceptable_pct)
_YEAR_COLUMN = re.compile(r"^(\d{4}) ?Sch ?(.+?)\s*$")


class DataError(ValueError):
    """The file is missing, unreadable or not the expected table."""


def cache_dir() -> Path:
    """Folder of cached extracts: ``$SBC_CACHE_DIR``, else ``$XDG_CACHE_HOME/sbc``."""
    if folder := os.environ.get("SBC_CACHE_DIR"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sbc"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def tidy(raw: pd.DataFrame, source: str = "the table") -> pd.DataFrame:
    """Tidy the raw sheet (all cells as text) into one row per (course, school, year).

    Raises
    ------
    DataError
        If identity columns or per-year result columns are missing.
    """
    raw = raw.rename(columns=lambda c: str(c).strip())
    missing = [c for c in IDENTITY if c not in raw.columns]
    if missing:
        raise DataError(
            f"{source} is not Alberta's school-level diploma results table "
            f"(no column {', '.join(repr(m) for m in missing)})"
        )
    codes = raw["School Code"].astype("string").str.strip()
    raw = raw[codes.str.fullmatch(r"\d+", na=False)]  # footnotes and blank rows have none
    frames = []
    years: dict[int, dict[str, str]] = {}
    known = MEASURES | OPTIONAL
    for column in raw.columns:
        if (match := _YEAR_COLUMN.match(column)) and match.group(2) in known:
            years.setdefault(int(match.group(1)), {})[known[match.group(2)]] = column
    years = {y: c for y, c in years.items() if set(MEASURES.values()) <= set(c)}
    if not years:
        raise DataError(
            f"{source} has no per-year 'Sch Students Writing' / 'Exam Average %' columns"
        )
    for year, columns in sorted(years.items()):
        frame = pd.DataFrame(
            {
                "course": raw["Diploma Course"].astype("string").str.strip(),
                "authority_type": raw["Authority Type"].astype("string").str.strip(),
                "authority_code": raw["Authority Code"].astype("string").str.strip().str.zfill(4),
                "authority_name": raw["Authority Name"].astype("string").str.strip(),
                "school_code": raw["School Code"].astype("string").str.strip().str.zfill(4),
                "school_name": raw["School Name"].astype("string").str.strip(),
                "year": year,
            }
        )
        for name in (*MEASURES.values(), *OPTIONAL.values()):
            if name not in columns:  # an optional column this edition lacks
                frame[name] = float("nan")
                continue
            cells = raw[columns[name]].replace({"n/a": None})
            frame[name] = pd.to_numeric(cells, errors="coerce").astype("float64")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def load(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Tidy table of every course, school and year in the file at ``path``.

    Parameters
    ----------
    path : path, optional
        An official xlsx (parsed once, then read from the cache) or an extract CSV
        (:func:`write_extract`); by default the shipped extract :data:`EXTRACT`.

    Raises
    ------
    DataError
        If the file is missing, unreadable or not this table.
    """
    if path is None or str(path) == "":
        with resources.as_file(EXTRACT) as shipped:
            return read_extract(shipped)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    if path.suffix.lower() == ".csv":
        return read_extract(path)
    try:
        cached = cache_dir() / f"alberta-v{_CACHE_VERSION}-{_digest(path)}.parquet"
        if cached.is_file():
            return pd.read_parquet(cached)
        raw = pd.read_excel(path, dtype=str)
    except DataError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a file that is not xlsx
        raise DataError(f"cannot read {path} as an xlsx table: {exc}") from None
    table = tidy(raw, str(path))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        table.to_parquet(tmp, index=False)
        tmp.replace(cached)
    except OSError:
        pass  # a read-only cache only costs speed
    return table


def select(table: pd.DataFrame, course: str, year: int, min_students: int) -> pd.DataFrame:
    """Schools of one course and year with at least ``min_students`` writers and results.

    Raises
    ------
    DataError
        If the course or year is not in the table, or no school is left.
    """
    if course not in set(table["course"]):
        known = ", ".join(sorted(set(table["course"])))
        raise DataError(f"no course {course!r} in the data (courses: {known})")
    if year not in set(table["year"]):
        raise DataError(
            f"no year {year} in the data (years: {', '.join(map(str, sorted(set(table['year']))))})"
        )
    rows = table[(table["course"] == course) & (table["year"] == year)]
    rows = rows.dropna(subset=["writers", "exam_mean"])
    rows = rows[rows["writers"] >= min_students].reset_index(drop=True)
    if rows.empty:
        raise DataError(f"no school of {course} {year} has {min_students} or more writers")
    return rows


def extract(table: pd.DataFrame, course: str, year: int) -> pd.DataFrame:
    """Rows of one course and year that hold any result: the content of an extract CSV."""
    rows = table[(table["course"] == course) & (table["year"] == year)]
    measures = [*MEASURES.values(), *OPTIONAL.values()]
    rows = rows[rows[measures].notna().any(axis=1)].reset_index(drop=True)
    return rows[list(COLUMNS)]


def write_extract(
    xlsx: str | os.PathLike[str],
    out: str | os.PathLike[str],
    course: str = EXTRACT_COURSE,
    year: int = EXTRACT_YEAR,
) -> Path:
    """Write the extract CSV of one course and year of an official xlsx; return its path."""
    rows = extract(load(xlsx), course, year).astype({"writers": "Int64"})
    out = Path(out)
    rows.to_csv(out, index=False, lineterminator="\n")
    return out


def read_extract(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The tidy table held in an extract CSV (as :func:`tidy` gives it).

    Raises
    ------
    DataError
        If the file is unreadable or lacks a column of :data:`COLUMNS`.
    """
    path = Path(path)
    try:
        stat = path.stat()
        return _read_extract(str(path.resolve()), stat.st_mtime_ns, stat.st_size).copy()
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} as an extract CSV: {exc}") from None


@functools.lru_cache(maxsize=4)
def _read_extract(path: str, mtime: int, size: int) -> pd.DataFrame:
    text = ["course", "authority_type", "authority_code", "authority_name"]
    text += ["school_code", "school_name"]
    frame = pd.read_csv(
        path, dtype=dict.fromkeys(text, "string"), keep_default_na=False, na_values=[""]
    )
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path} is not an Alberta extract (no column {', '.join(missing)})")
    measures = [*MEASURES.values(), *OPTIONAL.values()]
    return frame.astype({"year": "int64", **dict.fromkeys(measures, "float64")})[list(COLUMNS)]


def main(argv: list[str] | None = None) -> int:
    """``python -m scenarios.alberta_data XLSX OUT.csv [COURSE YEAR]``: write an extract."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 4):
        print(main.__doc__, file=sys.stderr)
        return 2
    course, year = (args[2], int(args[3])) if len(args) == 4 else (EXTRACT_COURSE, EXTRACT_YEAR)
    out = write_extract(args[0], args[1], course, year)
    digest = hashlib.sha256(Path(args[0]).read_bytes()).hexdigest()
    print(f"{out}: {len(read_extract(out))} schools; source SHA-256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
