"""Long-tailed splits: the reference's index files, new long-tailed and few-shot subsets, class groups."""
from split.errors import SplitError
from split.groups import ClassGroups, GroupAccuracy, class_groups, group_accuracy
from split.index_file import load_index_file
from split.long_tail import few_shot_subset, long_tail_counts, long_tailed_subset
from split.reference_layout import SHOT_SIZES, ReferenceFiles, find_reference_files
from split.summary import describe_split

__all__ = [
    "ClassGroups", "GroupAccuracy", "ReferenceFiles", "SHOT_SIZES", "SplitError", "class_groups", "describe_split",
    "few_shot_subset", "find_reference_files", "group_accuracy", "load_index_file", "long_tail_counts",
    "long_tailed_subset",
]
