"""Build report: `write_report(OUT)` writes OUT/report/index.html (load -> figures -> page)."""

from empathy_data.tools.report.load import ReportError, load_report_data, read_manifest
from empathy_data.tools.report.page import SECTION_IDS, write_report

__all__ = ["SECTION_IDS", "ReportError", "load_report_data", "read_manifest", "write_report"]
