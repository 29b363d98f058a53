"""Stand-in for IPython.display (see ../README.md): sglang.utils imports these; bench_serving never calls them."""


def HTML(*args, **kwargs):
    raise RuntimeError("IPython stand-in: the compat suite's venv has no IPython")


def display(*args, **kwargs):
    raise RuntimeError("IPython stand-in: the compat suite's venv has no IPython")
