"""Running a build: the build context with its stage keys and chunk functions (`build`), the backend
factory and its per-worker cache (`backends`), preflight, Ctrl-C handling and Dask GPU workers.

May import: every folder but flows/, tools/ and the CLI.
"""
