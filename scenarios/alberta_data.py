"""Loader for Alberta's public school-level diploma examination results (xlsx).

Reads the official ``diploma-multiyear-sch-list-annual.xlsx`` table (any edition: year
columns spelled ``2016 Sch Students Writing`` or ``2016Sch Students Writing``, and
``2012SchStudents Writing`` in the oldest), turns it into a tidy table with one row per
(course, school, year), and caches that extract as Parquet, because reading the xlsx takes
several seconds. Suppressed cells (``n/a``) become missing values, codes stay zero-padded
strings, and the footnote rows at the bottom are dropped.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    years = {}
    for column in raw.columns:
        if (match := _YEAR_COLUMN.match(column)) and match.group(2) in MEASURES:
            years.setdefault(int(match.group(1)), {})[MEASURES[match.group(2)]] = column
    years = {y: cols for y, cols in years.items() if len(cols) == len(MEASURES)}
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
        for name, column in columns.items():
            frame[name] = pd.to_numeric(raw[column].replace({"n/a": None}), errors="coerce")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Tidy table of every course, school and year in the xlsx at ``path`` (cached).

    Raises
    ------
    DataError
        If the file is missing, unreadable or not this table.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    try:
        cached = cache_dir() / f"alberta-{_digest(path)}.parquet"
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
