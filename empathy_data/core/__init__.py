"""Foundations every other folder may use: domain errors (each says where), content hashes, atomic
writes, audio helpers, the label vocabulary, package versions and the built-in resources' locations.

May import: nothing of empathy_data outside core/.
"""
