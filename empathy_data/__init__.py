"""empathy-data: manufactures training corpora for empathetic speech language models."""

import warnings

# zhconv and webrtcvad (Resemblyzer's) import pkg_resources, whose deprecation warning would fill every
# build's log; setuptools < 81 is pinned for them (pyproject.toml).
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

__version__ = "0.1.0"
