"""Analytics: what every enrollment did, by sequence, workflow, sender, failure reason and day.

A package cut along its seams; callers keep using ``from autoseq.services import analytics`` and
``analytics.<name>``:

- ``filters``: the query parameters of a page, checked against one workspace; the dropdowns.
- ``rollups``: counts of finished enrollments kept per 15-minute UTC bucket (and per UTC day),
  maintained in the transaction that changes a row, rebuilt in bulk after bulk writes.
- ``aggregates``: the page's figures (headline, days, breakdowns), from the rollups where they
  serve the filters, from the rows otherwise.
- ``log``: the keyset-paged execution log; ``export``: the CSV download.

Chart geometry is presentation: ``autoseq/views/charts.py``.
"""

from . import rollups
from .aggregates import (
    DIMENSIONS,
    Counts,
    Day,
    Report,
    Row,
    by_mailbox,
    by_reason,
    by_rotation,
    by_sequence,
    by_workflow,
    day_starts,
    grouping_sets_rows,
    headline,
    local_day_expression,
    offset_segments,
    per_day,
    report,
)
from .export import EXPORT_HEADER, csv_safe, export_rows
from .filters import (
    DEFAULT_PERIOD,
    EXPORT_CHUNK,
    FAILURE_TEXT,
    FILTER_KEYS,
    LOG_PAGE_SIZE,
    MAX_RANGE_DAYS,
    PERIODS,
    STATUSES,
    Filters,
    filter_choices,
    local_midnight,
    workspace_zone,
)
from .log import (
    LOG_COLUMNS,
    LogPage,
    decode_cursor,
    encode_cursor,
    log_page,
    sender_names,
    workflow_names,
)

__all__ = [
    "rollups",
    "DEFAULT_PERIOD",
    "DIMENSIONS",
    "EXPORT_CHUNK",
    "EXPORT_HEADER",
    "FAILURE_TEXT",
    "FILTER_KEYS",
    "LOG_COLUMNS",
    "LOG_PAGE_SIZE",
    "MAX_RANGE_DAYS",
    "PERIODS",
    "STATUSES",
    "Counts",
    "Day",
    "Filters",
    "LogPage",
    "Report",
    "Row",
    "by_mailbox",
    "by_reason",
    "by_rotation",
    "by_sequence",
    "by_workflow",
    "csv_safe",
    "day_starts",
    "decode_cursor",
    "encode_cursor",
    "export_rows",
    "filter_choices",
    "grouping_sets_rows",
    "headline",
    "local_day_expression",
    "local_midnight",
    "log_page",
    "offset_segments",
    "per_day",
    "report",
    "sender_names",
    "workflow_names",
    "workspace_zone",
]
