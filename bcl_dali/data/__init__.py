"""Data sources: a long-tailed training set with its probe pool, few-shot subsets and test set."""
from bcl_dali.data.load import DATASETS, DEFAULT_IMBALANCE, load_data, load_pool, save_index_file
from bcl_dali.data.sets import ImageSet, LongTailedData, TrainPool

__all__ = ["DATASETS", "DEFAULT_IMBALANCE", "ImageSet", "LongTailedData", "TrainPool", "load_data", "load_pool", "save_index_file"]
