"""Stand-in for Hugging Face `datasets` (see ../README.md): bench_serving imports load_dataset at module level but
calls it only for Hugging Face datasets (MMMU, ...), never for random or sharegpt runs."""


def load_dataset(*args, **kwargs):
    raise RuntimeError("datasets stand-in: the compat suite runs only random and sharegpt datasets")
