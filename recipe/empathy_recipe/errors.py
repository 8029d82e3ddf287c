"""One-line user errors: the CLI prints the message and exits 1, without a traceback."""


class RecipeError(Exception):
    pass
