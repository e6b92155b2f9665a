"""The dataset registry: every dataset loads as float32 NCHW images in [0, 1] with int64 labels.

``load_dataset(name)`` is the one entry point. Names are listed by ``list_datasets()``; an image
folder is named ``folder:PATH``.
"""

from edgekit.data.registry import Dataset, DatasetInfo, list_datasets, load_dataset

__all__ = ["Dataset", "DatasetInfo", "list_datasets", "load_dataset"]
