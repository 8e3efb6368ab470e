"""A module that imports in the test process but fails to import in a pool worker."""

import multiprocessing

if multiprocessing.parent_process() is not None:
    raise ImportError("parent_only cannot be imported in a worker")


def identity(x: object) -> object:
    """The item itself."""
    return x
