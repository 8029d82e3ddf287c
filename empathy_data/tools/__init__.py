"""Reading a finished build: `verify`, `inspect`, the HTML report, and importing a speaker pool from
clips on disk.

May import: core/, records/, config/, planning/, store/; never runtime/ or flows/.
"""
