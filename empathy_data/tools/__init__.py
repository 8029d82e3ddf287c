"""Reading a finished build: `verify`, `inspect`, the HTML report, `eval-set`, `score`; and reading clips on
disk: a speaker pool (`speakers import`) and a real-speech corpus (`ingest`).

May import: core/, records/, config/, planning/, store/; never runtime/ or flows/.
"""
