"""Image sources behind one protocol (bcl_dali.data.source: in-memory arrays, image folders' files)
and the long-tailed data set a run trains on: training subset, probe pool, few-shot subsets, test set.
May import bcl_dali.errors, device, atomic, split and pipelines; nothing of training or evaluation."""
from bcl_dali.data.arrays import ArrayImages
from bcl_dali.data.files import ImageFiles
from bcl_dali.data.load import DATASETS, DEFAULT_IMBALANCE, load_data, load_pool, save_index_file
from bcl_dali.data.sets import ImageSet, LongTailedData, TrainPool
from bcl_dali.data.source import ImageSource

__all__ = ["DATASETS", "DEFAULT_IMBALANCE", "ArrayImages", "ImageFiles", "ImageSet", "ImageSource", "LongTailedData",
           "TrainPool", "load_data", "load_pool", "save_index_file"]
