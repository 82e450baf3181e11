"""A static, self-contained HTML page of a run's data-quality results and metric trends."""

from gristmill.report.assemble import from_history
from gristmill.report.html import render_html
from gristmill.report.model import CheckRow, MetricPoint, MetricSeries, Report

__all__ = ["CheckRow", "MetricPoint", "MetricSeries", "Report", "from_history", "render_html"]
