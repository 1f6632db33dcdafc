"""Imports a module inside run: there are no modules to load at run time."""


def run(ctx):
    import csv  # noqa: F401 (the point: an import that is not at the top of the module)

    raise RuntimeError("imported csv inside run")
