"""The Speed tab's "Results" box: the benchmark's table, charts and method.

:class:`BenchmarkResultsBox` shows the rows of a benchmark as they come (a
:class:`~gui.speed.benchmark_table.BenchmarkTableModel` in a table as tall as
its rows), bar charts of latency and of speed-up beside the FLOPs cut with their
legend, the method text, a note on the slim model and the Export buttons (the
panel does the exporting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.speed.benchmark_table import HEADERS, BenchmarkTableModel
from gui.speed.charts import LatencyChart, SpeedupChart, legend_html
from gui.speed.forms import FORM_COLORS, FORM_ORDER, form_label
from gui.widgets.colormaps import ACCENT_RGB
from gui.widgets.forms import note_label

if TYPE_CHECKING:
    from core.speed.benchmark import BenchmarkReport, FormResult

TABLE_MIN_ROWS = 3
TABLE_MAX_ROWS = 16


class BenchmarkResultsBox(QGroupBox):
    """The benchmark's table, export buttons, charts, legend and method (module docstring).

    Args:
        parent: the Qt parent.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Results", parent)
        self.table_model = BenchmarkTableModel(self)
        self.table = self._build_table()
        self.method_label = note_label("")
        self.method_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.slim_note = note_label("")
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("Save the table as CSV (one row per form and batch size).")
        self.json_button = QPushButton("Export JSON…")
        self.json_button.setToolTip(
            "Save the whole report (settings, method, rows, advice) as JSON."
        )
        results = QVBoxLayout(self)
        results.addWidget(self.table)
        export_row = QHBoxLayout()
        export_row.addWidget(self.slim_note, 1)
        export_row.addWidget(self.csv_button)
        export_row.addWidget(self.json_button)
        results.addLayout(export_row)
        # The charts are made once the table and the buttons are in: they follow them
        # in the tab order.
        self.latency_chart = LatencyChart(self)
        self.latency_chart.setToolTip("Median time per forward pass; the whisker spans the IQR.")
        self.speedup_chart = SpeedupChart(self)
        self.speedup_chart.setToolTip(
            "Filled: measured speed-up over dense. Hollow: the cut in FLOPs the form really "
            "executes (dense FLOPs / its FLOPs; zeros in dense tensors still count). Dotted: "
            "the cut the masks promise on paper. The gaps are what fewer operations did not "
            "buy in time."
        )
        self._charted: tuple[FormResult, ...] = ()  # the rows the charts show (none yet)
        self.chart_legend = QLabel(self)
        self.chart_legend.setWordWrap(True)
        results.addWidget(self.latency_chart)
        results.addWidget(self.speedup_chart)
        results.addWidget(self.chart_legend)
        results.addWidget(self.method_label)
        self.table_model.rowsInserted.connect(lambda *_args: self.fit_table())
        self.table_model.modelReset.connect(self.fit_table)

    # -- construction ---------------------------------------------------------------------
    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.table_model)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        for column in range(len(HEADERS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return table

    def fit_table(self) -> None:
        """Tall enough for every row (between :data:`TABLE_MIN_ROWS` and :data:`TABLE_MAX_ROWS`)."""
        table = self.table
        rows = min(max(self.table_model.rowCount(), TABLE_MIN_ROWS), TABLE_MAX_ROWS)
        height = (
            table.horizontalHeader().sizeHint().height()
            + rows * table.verticalHeader().defaultSectionSize()
            + table.horizontalScrollBar().sizeHint().height()
            + 2 * table.frameWidth()
        )
        table.setFixedHeight(height)

    # -- showing ------------------------------------------------------------------------------
    def clear(self) -> None:
        """Empty the table and the charts (the method text stays)."""
        self.table_model.clear()
        self.draw_charts()

    def add_result(self, result: FormResult) -> None:
        """Add one measured row (while the benchmark runs) and redraw the charts."""
        self.table_model.add_result(result)
        self.draw_charts()

    def show_report(self, report: BenchmarkReport) -> None:
        """Show a finished benchmark: all its rows, the charts and the method."""
        self.table_model.set_results(report.rows)
        self.draw_charts()
        self.method_label.setText(
            f"<b>Method.</b> {report.method}<br>Device: {report.device_name} · "
            f"{report.threads} thread{'s' if report.threads != 1 else ''}"
        )

    def set_paper_cut(self, cut: float | None) -> None:
        """Mark the FLOPs cut the masks promise on paper (None: none) on the speed-up chart."""
        self.speedup_chart.set_paper_cut(cut)
        self.draw_legend()

    def set_exportable(self, exportable: bool) -> None:
        """Enable or disable the Export buttons."""
        self.csv_button.setEnabled(exportable)
        self.json_button.setEnabled(exportable)

    def draw_charts(self) -> None:
        """Redraw both charts (when their rows changed) and the legend from the table's rows.

        Rebuilding the plots costs ~20 ms of the GUI thread; opening a model clears
        results that are most often empty already.
        """
        rows = tuple(self.table_model.rows)
        if rows != self._charted:
            self._charted = rows
            self.latency_chart.show_rows(rows)
            self.speedup_chart.show_rows(rows)
        self.draw_legend()

    def draw_legend(self) -> None:
        """The legend under the charts: the forms shown, the FLOPs cuts."""
        rows = self.table_model.rows
        forms = [f for f in FORM_ORDER if any(r.form == f for r in rows)]
        entries = [(form_label(f), FORM_COLORS[f], "■") for f in forms]
        if forms:
            entries.append(("FLOPs cut (hollow)", (110, 110, 110), "□"))
        if forms and self.speedup_chart.paper_cut is not None:
            entries.append(("FLOPs cut on paper (dense / effective)", ACCENT_RGB, "┈"))
        self.chart_legend.setText(legend_html(entries) if entries else "")
