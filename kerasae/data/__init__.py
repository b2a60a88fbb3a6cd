"""Data (core layer): datasets by name or path, and the tf.data pipelines they are read through.

    sources.py      load_dataset: a registered name or a path to a dataset
    named.py        digits, fashion_mnist, mnist, cifar10 (memory.py: the in-memory Dataset)
    dsprites.py     the dSprites grid rendered by kerasae; dsprites_data.py its datasets
    arrays.py, csv_files.py, mapped.py: .npy/.npz, .csv, and large memory-mapped .npy
    streams.py, folders.py, records.py, images.py: image folders and TFRecord files,
                    streamed; tfrecord.py writes them (`kerasae convert-tfrecord`)
    pipeline.py     the tf.data building blocks; options.py the image options of a run
    scoring.py      every example of a source in file order, for `kerasae detect`

Every dataset offers n_train, n_test, batches(split, batch_size, ...), head(split, n) and
arrays(split). May import the base only (and `kerasae.distribute`).
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.data.sources: load_dataset DataSource register_dataset named_datasets
    kerasae.data.schemes: MMAP_BYTES
    kerasae.data.named: NAMED
    kerasae.data.memory: Dataset SPLIT_SEED
    kerasae.data.images: IMAGE_SUFFIXES
    kerasae.data.arrays: apply_scaling numeric read_examples
    kerasae.data.streams: open_images is_image_source
    kerasae.data.options: check_data_options parse_image_size data_options
    kerasae.data.pipeline: make_tf_dataset
""",
)
