"""`folder`: images on disk, as ImageNet-LT and Places-LT are published, or as a class-subfolder tree.

Two layouts under `--data-dir ROOT`:
- file lists: one "relative/path.jpg label" per line (paths relative to ROOT, labels 0..C-1), a
  train list (the long-tailed training set itself) and a test list; the probe pool is the probe
  list if given (e.g. the full balanced training set, for 100-shot probes), else the val list,
  else the train list;
- a tree `ROOT/train/CLASS/*.jpg` with `ROOT/test/CLASS/` (or `ROOT/val/CLASS/`); classes are the
  sorted subfolder names (hidden entries, such as `.ipynb_checkpoints` or macOS's `._x.jpg`, are
  not images), the whole train tree is the pool and the probe pool, and the training set is the
  tree as it is, or with `--imbalance` a long-tailed subset that keeps each class's first files by
  name (for a balanced tree).

Every file is checked before training starts (present, a readable image of 8 bits per channel, its
label in range, no list empty), and its size, byte size and modification time are read once: the
sampler draws crop boxes from the sizes, resume fingerprints the set from all three.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from bcl_dali.data.files import ImageFiles
from bcl_dali.data.sets import ImageSet, TrainPool, count_classes
from bcl_dali.device import cpu_count
from bcl_dali.errors import UserError
from bcl_dali.pipelines.undecodable import decode_problem
from bcl_dali.split import SplitError, long_tailed_subset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
"""PIL's modes of images with more than 8 bits per channel."""
TREE_TRAIN = "train"
TREE_TESTS = ("test", "val")
GROUPING = "counts"
"""Many / Medium / Few as ImageNet-LT and Places-LT define them (split.groups)."""


@dataclass(frozen=True)
class FolderLists:
    """The list files of a folder data set; all None for a class-subfolder tree."""

    train: str | None = None
    test: str | None = None
    val: str | None = None
    probe: str | None = None


@dataclass(frozen=True)
class _Entries:
    """Parsed lines: paths relative to the root, labels, and where each came from (for messages)."""

    paths: list[str]
    labels: np.ndarray
    origins: list[str]


def folder_pool(data_dir: str | os.PathLike | None, lists: FolderLists, imbalance: float | None,
                verify: bool = False) -> TrainPool:
    """`verify`: decode every file in full (a header can be intact and the rest cut off); training
    files that do not decode are reported in `TrainPool.undecodable`, the others refused."""
    if data_dir is None:
        raise UserError("--dataset folder needs --data-dir ROOT, the folder the list files' paths are relative to "
                        "(or that holds train/CLASS/ subfolders)")
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"--data-dir {root} is not a folder; give the data set's root folder")
    if lists.train is None and lists.test is None:
        return _tree_pool(root, imbalance, verify)
    if lists.train is None or lists.test is None:
        given, missing = ("--train-list", "--test-list") if lists.test is None else ("--test-list", "--train-list")
        raise UserError(f"{given} needs {missing} too (or give neither, for a ROOT/train/CLASS/ tree)")
    train = _read_list(Path(lists.train))
    num_classes = _classes_of(train, lists.train)
    test = _read_list(Path(lists.test))
    probe_list = lists.probe or lists.val
    probe = _read_list(Path(probe_list)) if probe_list else None
    for entries, name in ((test, lists.test), (probe, probe_list)):
        if entries is not None:
            _check_range(entries, num_classes, name, lists.train)
    files, undecodable = _scan(root, [train, test] + ([probe] if probe else []), verify)
    train_files, test_files = files[0], files[1]
    if probe is None:
        pool_files, pool_labels = train_files, train.labels
        probe_indices = np.arange(len(train.labels), dtype=np.int64)
    else:
        pool_files = _concat(train_files, files[2])
        pool_labels = np.concatenate([train.labels, probe.labels])
        probe_indices = np.arange(len(train.labels), len(pool_labels), dtype=np.int64)
    return TrainPool(name="folder", num_classes=num_classes, labels=pool_labels, probe_indices=probe_indices,
                     images=lambda indices: pool_files[indices], test=lambda: ImageSet(test_files, test.labels),
                     train_indices=np.arange(len(train.labels), dtype=np.int64), grouping=GROUPING,
                     undecodable=undecodable)


def files_at(paths: Sequence[str | os.PathLike]) -> ImageFiles:
    """Files named by their paths (e.g. a torchvision ImageFolder's samples), checked and measured as
    a folder's are, under the deepest folder that holds them all."""
    absolute = [Path(path).resolve() for path in paths]
    if not absolute:
        raise UserError("no image paths given; a source needs at least one image")
    root = Path(os.path.commonpath([path.parent for path in absolute]))
    entries = _Entries([str(path.relative_to(root)) for path in absolute], np.zeros(len(absolute), np.int64),
                       [str(path) for path in absolute])
    return _scan(root, [entries])[0][0]


def files_under(folder: Path) -> ImageFiles:
    """Every image under `folder` (any depth, by path; hidden entries skipped), e.g. a class tree's train/."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of images, an array or a dataset")
    paths = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in path.relative_to(folder).parts))
    if not paths:
        raise UserError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); give the folder that holds them")
    return files_at(paths)


def list_files(root: Path, list_file: Path) -> ImageFiles:
    """The files of one list, checked and measured as `folder_pool` checks them (for benchmarks)."""
    return _scan(root, [_read_list(list_file)])[0][0]


def _tree_pool(root: Path, imbalance: float | None, verify: bool) -> TrainPool:
    train_dir = root / TREE_TRAIN
    if not train_dir.is_dir():
        raise UserError(f"{root} has no {TREE_TRAIN}/ folder; give --train-list and --test-list, or lay the images "
                        f"out as {TREE_TRAIN}/CLASS/*.jpg")
    classes = sorted(entry.name for entry in _visible(train_dir) if entry.is_dir())
    if len(classes) < 3:
        raise UserError(f"{train_dir} holds {len(classes)} class folder(s); Many / Medium / Few need at least 3")
    test_dir = next((root / name for name in TREE_TESTS if (root / name).is_dir()), None)
    if test_dir is None:
        raise UserError(f"{root} has no {' or '.join(TREE_TESTS)}/ folder of test images; add one, laid out as "
                        f"{TREE_TRAIN}/ is")
    train = _read_tree(root, train_dir, classes)
    test = _read_tree(root, test_dir, classes)
    files, undecodable = _scan(root, [train, test], verify)
    train_indices = np.arange(len(train.labels), dtype=np.int64)
    if imbalance is not None:
        try:
            train_indices = long_tailed_subset(train.labels, imbalance, None, num_classes=len(classes))
        except SplitError as error:
            raise UserError(f"--imbalance {imbalance:g} cuts a long-tailed subset from a balanced tree, but {error}; "
                            "lower --imbalance, or drop it to train on the tree as it is") from None
    return TrainPool(name="folder", num_classes=len(classes), labels=train.labels,
                     probe_indices=np.arange(len(train.labels), dtype=np.int64),
                     images=lambda indices: files[0][indices], test=lambda: ImageSet(files[1], test.labels),
                     train_indices=train_indices, grouping=GROUPING, undecodable=undecodable)


def _visible(folder: Path) -> list[Path]:
    """A folder's entries but the hidden ones (`.ipynb_checkpoints`, macOS's `._x.jpg` and `.DS_Store`)."""
    return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]


def _read_tree(root: Path, folder: Path, classes: list[str]) -> _Entries:
    """Every image of `folder`'s class folders; every class has some (the test tree too: a class without
    test images would vanish from every accuracy without a word)."""
    unknown = sorted(entry.name for entry in _visible(folder) if entry.is_dir() and entry.name not in classes)
    if unknown:
        raise UserError(f"{folder / unknown[0]} is a class that {root / TREE_TRAIN} lacks; every class of "
                        f"{folder.name}/ needs a {TREE_TRAIN}/ folder too")
    paths, labels = [], []
    for label, name in enumerate(classes):
        names = sorted(entry.name for entry in _visible(folder / name)
                       if entry.suffix.lower() in IMAGE_SUFFIXES) if (folder / name).is_dir() else []
        if not names:
            raise UserError(f"{folder / name} holds no images ({', '.join(IMAGE_SUFFIXES)}); every class of "
                            f"{root / TREE_TRAIN} needs some in {folder.name}/ too")
        paths += [f"{folder.name}/{name}/{file}" for file in names]
        labels += [label] * len(names)
    return _Entries(paths, np.asarray(labels, np.int64), [str(root / path) for path in paths])


def _read_list(path: Path) -> _Entries:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise UserError(f"list file {path} does not exist; give the path of a \"relative/path.jpg label\" list") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read list file {path} ({error}); it must be a text file") from None
    paths, labels, origins = [], [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise UserError(f"{path} line {number} is {line.strip()!r}; every line must be \"relative/path.jpg label\" "
                            "with an integer label")
        paths.append(parts[0].strip())
        labels.append(int(parts[1]))
        origins.append(f"{path} line {number}")
    if not paths:
        raise UserError(f"list file {path} is empty; it needs one \"relative/path.jpg label\" line per image")
    labels_array = np.asarray(labels, np.int64)
    if labels_array.min() < 0:
        where = origins[int(labels_array.argmin())]
        raise UserError(f"{where} has label {labels_array.min()}; labels must be 0..C-1")
    return _Entries(paths, labels_array, origins)


def _classes_of(train: _Entries, name: str) -> int:
    num_classes = count_classes(train.labels, name, " in the train list")
    if num_classes < 3:
        raise UserError(f"{name} has {num_classes} classes; Many / Medium / Few need at least 3")
    return num_classes


def _check_range(entries: _Entries, num_classes: int, name: str, train_name: str) -> None:
    outside = np.flatnonzero(entries.labels >= num_classes)
    if len(outside):
        first = outside[0]
        raise UserError(f"{entries.origins[first]} has label {entries.labels[first]}, out of range: {train_name} has "
                        f"classes 0..{num_classes - 1} ({len(outside)} line(s) of {name} are outside); relabel them")


def _concat(first: ImageFiles, second: ImageFiles) -> ImageFiles:
    return ImageFiles(first.root, *(np.concatenate([getattr(first, name), getattr(second, name)])
                                   for name in ("paths", "heights", "widths", "bytes", "mtimes", "origins")))


def _scan(root: Path, sets: list[_Entries], verify: bool = False) -> tuple[list[ImageFiles], dict[int, str]]:
    """Every set's files, checked and measured; refuses, naming the first, if any is missing or
    unreadable. With `verify` each is decoded in full: the first set's files that do not decode are
    returned by position with PIL's reason, the others' refused (evaluation images must decode)."""
    paths = [path for entries in sets for path in entries.paths]
    origins = [origin for entries in sets for origin in entries.origins]
    with ThreadPoolExecutor(max(4, 2 * cpu_count())) as pool:
        found = list(_progress(pool.map(lambda path: _facts(root / path, verify), paths, chunksize=64), len(paths),
                               "decoded" if verify else "checked"))
    facts = [fact for fact, _ in found]
    undecodable = {i: problem for i, (_, problem) in enumerate(found) if problem is not None}
    later = sorted(i for i in undecodable if i >= len(sets[0].paths))
    if later:
        raise UserError(f"{len(later)} evaluation image(s) cannot be decoded; the first is {root / paths[later[0]]} "
                        f"({origins[later[0]]}: {undecodable[later[0]]}); replace or remove it")
    for problem, fix in (("missing", "check --data-dir and the list"),
                         ("unreadable", "replace or remove the file (it is not an image PIL can open)"),
                         ("16-bit", "save it with 8 bits per channel (DALI and PIL convert 16-bit images differently)")):
        bad = [i for i, fact in enumerate(facts) if fact == problem]
        if bad:
            raise UserError(f"{len(bad)} of {len(paths)} images are {problem}; the first is {root / paths[bad[0]]} "
                            f"({origins[bad[0]]}); {fix}")
    table = np.asarray(facts, np.int64).reshape(len(paths), 4)
    out, start = [], 0
    for entries in sets:
        rows = slice(start, start + len(entries.paths))
        heights, widths, sizes, mtimes = table[rows].T
        out.append(ImageFiles(root, np.asarray(entries.paths), heights.copy(), widths.copy(), sizes.copy(),
                              mtimes.copy(), np.asarray(entries.origins)))
        start = rows.stop
    return out, undecodable


def _facts(path: Path, verify: bool = False) -> tuple[tuple[int, int, int, int] | str, str | None]:
    """(height, width, bytes, mtime_ns) of one image from its header and the file system, or what is
    wrong; and with `verify`, why the whole file does not decode (a header can be intact and the rest
    cut off), or None."""
    try:
        status = path.stat()
        with Image.open(path) as image:
            width, height = image.size
            if image.mode in WIDE_MODES:
                return "16-bit", None
    except FileNotFoundError:
        return "missing", None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "unreadable", None
    return (height, width, status.st_size, status.st_mtime_ns), decode_problem(path.read_bytes()) if verify else None


PROGRESS_EVERY = 10_000
"""Files between two progress lines of a long check (on a terminal or not)."""


def _progress(facts: Iterator, total: int, verb: str) -> Iterator:
    """The facts as they come, with a line on stderr every PROGRESS_EVERY files of a long check."""
    for done, fact in enumerate(facts, 1):
        if total > PROGRESS_EVERY and (done % PROGRESS_EVERY == 0 or done == total):
            print(f"{verb} {done:,} of {total:,} files", file=sys.stderr, flush=True)
        yield fact
