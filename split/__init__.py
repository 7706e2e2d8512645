"""Long-tailed splits: the reference's index files, new long-tailed and few-shot subsets, class groups."""
from bcl_dali.split.errors import SplitError
from bcl_dali.split.groups import ClassGroups, GroupAccuracy, class_groups, group_accuracy
from bcl_dali.split.index_file import load_index_file
from bcl_dali.split.long_tail import few_shot_subset, long_tail_counts, long_tailed_subset
from bcl_dali.split.reference_layout import SHOT_SIZES, ReferenceFiles, find_reference_files
from bcl_dali.split.summary import describe_split

__all__ = [
    "ClassGroups", "GroupAccuracy", "ReferenceFiles", "SHOT_SIZES", "SplitError", "class_groups", "describe_split",
    "few_shot_subset", "find_reference_files", "group_accuracy", "load_index_file", "long_tail_counts",
    "long_tailed_subset",
]
