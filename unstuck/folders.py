"""Who owns an output folder, and what a new run or report may clear there.

A run into a folder first removes what an earlier run wrote (its seeds would otherwise mix
into the new tables), so unstuck must know which folders it wrote: each run or report
writes a marker file (`.unstuck`) first, and a folder without one (or without unstuck's
manifest.json, from before the marker) is someone else's, never cleared. The layout of what
is inside is unstuck/results.py's; this module is the part every command checks before it
starts, without pandas (`unstuck serve` and `unstuck sim` without `--out` never load it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from scheduler import files

TABLES = ("histories", "tasks", "faults", "fault_events", "violations", "metrics")
MARKER = ".unstuck"
CLEARED = (*TABLES, "scenarios", "runs.parquet", "manifest.json")


def wrote(folder: Path) -> set[str]:
    """What unstuck wrote in `folder`: "results" (a run's tables, which the next run into it
    replaces), "report" (a report's files, which the next report replaces), both or neither.

    Read from the marker file each run or report writes first, so that a run stopped before
    its first seed still owns its folder. Folders written before the marker existed are
    known by unstuck's manifest.json: beside the tables, or in a report folder's results/.
    A folder that is neither is someone else's, and nothing in it may be removed."""
    try:
        data = json.loads((folder / MARKER).read_text())
        parts = {p for p in data.get("wrote", []) if p in ("results", "report")}
    except (OSError, ValueError, AttributeError, TypeError):
        parts = set()
    if _is_manifest(folder / "manifest.json"):
        parts.add("results")
    if _is_manifest(folder / "results" / "manifest.json") and _is_our_page(folder / "index.html"):
        parts.add("report")  # a report folder from before the marker: results/ and our page
    return parts


def _is_our_page(path: Path) -> bool:
    """An index.html unstuck rendered (its title), not one of the user's beside results/."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return "<title>unstuck report</title>" in f.read(400)
    except OSError:
        return False


def _is_manifest(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"scenarios", "schedulers", "seed_start"} <= data.keys()


def mark(folder: Path, part: str) -> None:
    """Record in `folder`'s marker that unstuck writes its `part` ("results" or "report") there."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = sorted(wrote(folder) | {part})
    files.write_text(folder / MARKER, json.dumps({
        "wrote": parts, "note": "written by unstuck: a new run or report into this folder "
        "replaces what unstuck wrote here (and nothing else)"}, indent=2) + "\n")


def is_empty(folder: Path) -> bool:
    return not folder.is_dir() or next(folder.iterdir(), None) is None


def output_problems(option: str, out: Path, inputs: Iterable[Path]) -> list[str]:
    """Why a run must not write its results to `out`: a run first clears what an earlier run
    wrote there, so `out` must be new, empty or an unstuck results folder, and must not hold
    an input scenario file in a part that is cleared. Checked before any seed runs."""
    problems = []
    cleared = ", ".join(f"{n}/" if n in (*TABLES, "scenarios") else n for n in CLEARED)
    if not is_empty(out) and "results" not in wrote(out):
        problems.append(
            f"{option} {out}: not empty and not an unstuck results folder (it has no {MARKER} "
            f"marker or unstuck manifest.json), and a run first deletes any {cleared} in its "
            f"folder. Choose a new or empty folder (e.g. {out / 'run'}) or one an earlier "
            f"`unstuck sim --out` wrote; if {out} is an old run you no longer need, delete it "
            "first")
    for f in inputs:
        part = next((out / n for n in CLEARED if _inside(f, out / n)), None)
        if part is not None:
            problems.append(
                f"{option} {out}: would delete the input scenario file {f} (a run there first "
                f"deletes {part}/); copy the file out of {part}/ and pass the copy, or choose "
                "another folder")
    return problems


def results_part(path: Path, folder: Path) -> Path | None:
    """The part of the results folder `folder` (the folder itself included) that writing
    `path` would replace, or None. An output file named there (`--history`, `--junit`) would
    overwrite the tables it was asked to go beside, with an exit code that said all was well."""
    if path.resolve() == folder.resolve():
        return folder
    return next((folder / n for n in (*CLEARED, MARKER) if _inside(path, folder / n)), None)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def clear(out: Path) -> None:
    """Remove what an earlier run wrote to `out` (and only that), before a new run writes
    there: its seeds would otherwise mix into the new tables (a run of 4 seeds, then one of
    2, would show 4 seeds' tasks beside 2 seeds' runs). Marks `out` first, so a run stopped
    before its first seed still owns the folder. Refuses a folder that is not unstuck's
    (`output_problems` says so to the user before any seed runs)."""
    if not is_empty(out) and "results" not in wrote(out):
        raise ValueError(f"{out}: not an unstuck results folder; refusing to clear it")
    mark(out, "results")
    for name in CLEARED:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
        else:
            (out / name).unlink(missing_ok=True)
    # A gate run on this folder wrote its JUnit here (junit.xml, junit-<selection>.xml): it
    # judged the results being replaced.
    for old in [*out.glob("junit.xml"), *out.glob("junit-*.xml")]:
        old.unlink()


def unfinished(out: Path, error: OSError) -> str:
    """After a write into `out` failed: remove runs.parquet, the mark of a finished run (the
    manifest is written after it), so that no reader takes the folder for complete; and say
    what happened and what to do."""
    (out / "runs.parquet").unlink(missing_ok=True)
    what = error.filename or out
    return (f"could not write {what} ({error.strerror or error}); {out} holds only the seeds "
            "written before that and no runs.parquet, so `unstuck report` and `unstuck gate` "
            "refuse it as unfinished: fix the cause (free space, permissions) and rerun the "
            "command")


def make_missing(folder: Path, made: list[Path]) -> None:
    """Create `folder` and its missing parents, outermost first, appending each to `made` as
    it is created (so a failure midway still lists what was made, for `unmake`). A folder
    another process creates between the look and the mkdir (agents started at once on one
    new --backend-dir) is taken as it is, and is not ours to remove."""
    for d in reversed([d for d in [folder, *folder.parents] if not d.exists()]):
        try:
            d.mkdir()
        except FileExistsError:
            if d.is_dir():
                continue
            raise
        made.append(d)


def unmake(made: list[Path]) -> None:
    """Remove the folders `make_missing` created, innermost first, each only if still empty."""
    for d in reversed(made):
        with contextlib.suppress(OSError):
            d.rmdir()

