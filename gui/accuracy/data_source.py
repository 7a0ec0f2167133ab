"""Choosing the data to evaluate and fine-tune on: the built-in digits, a tensor file,
an image folder or a Python function, with the split settings that apply.

:class:`DataSourceBox` only edits a :class:`DataChoice` (and remembers the last one
in ``QSettings``); the panel loads it in a worker with
:func:`core.training.data.load_data_job` and reports back with
:meth:`DataSourceBox.show_loaded` or :meth:`DataSourceBox.show_error`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core.training.data import DATA_HELP
from gui.widgets.colormaps import ALARM_RGB, MUTED, hex_color

#: (kind, what the combo box says, what the text field asks for).
KINDS: tuple[tuple[str, str, str], ...] = (
    ("digits", "Built-in digits (8×8, 10 classes)", ""),
    ("file", "Tensor file (.npz, .pt, .safetensors)", "path of a .npz, .pt or .safetensors file"),
    ("folder", "Image folder (a sub-folder per class)", "folder with one sub-folder per class"),
    ("callable", "Python function (package.module:function)", "package.module:function"),
)
KIND_NAMES: tuple[str, ...] = tuple(kind for kind, _text, _hint in KINDS)
FILE_FILTER = "Tensor files (*.npz *.pt *.pth *.safetensors);;All files (*)"
SETTINGS_GROUP = "accuracy/data"

#: Which split settings a kind uses (the others are disabled).
USES: dict[str, tuple[str, ...]] = {
    "digits": ("val", "seed"),
    "file": ("val", "test", "seed"),
    "folder": ("val", "test", "seed"),
    "callable": (),
}
TIPS: dict[str, str] = {
    "digits": "The 1,797 handwritten 8×8 digits shipped with PruneScope: a fixed test split "
    "of 360 samples; the validation split is carved from the training samples.",
    "file": "A file holding tensors x and y (one set, split here by the fractions below) or "
    "train_x, train_y, test_x, test_y (and optionally val_x, val_y) used as given. "
    "uint8 images are scaled to [0, 1]. Only x: unlabeled, fidelity only.",
    "folder": "An ImageFolder layout: one sub-folder per class (sorted names = class "
    "indices), decoded with Pillow and resized to the model's input.",
    "callable": "A function importable as package.module:function that returns train and "
    "test iterables (e.g. DataLoaders), optionally a validation one, or a dict with keys "
    "train / val / test. Its own batching and shuffling are used; split settings do not apply.",
}


@dataclass(frozen=True)
class DataChoice:
    """What the user chose: a kind, its path or function, and the split settings."""

    kind: str = "digits"
    target: str = ""  # path (file, folder) or package.module:function
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0

    @property
    def spec(self) -> str:
        """The spec :func:`core.training.data.load_data` takes ("" when incomplete)."""
        return "digits" if self.kind == "digits" else self.target.strip()

    @property
    def ready(self) -> bool:
        """Whether there is something to load."""
        return bool(self.spec)


class DataSourceBox(QWidget):
    """Edits a :class:`DataChoice`; shows what was loaded, or why it cannot be used.

    Signals:
        changed(choice): the user changed the choice (any loaded data is now stale).
        load_requested(): the user asked to load (Load button, Enter, a file picked).
    """

    changed = Signal(object)
    load_requested = Signal()

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings if settings is not None else QSettings()
        self._targets: dict[str, str] = {}  # the text last typed for each kind
        self._plain = ""  # the description line without markup
        self.kind_combo = QComboBox(self)
        for kind, text, _hint in KINDS:
            self.kind_combo.addItem(text, kind)
            self.kind_combo.setItemData(
                self.kind_combo.count() - 1, TIPS[kind], Qt.ItemDataRole.ToolTipRole
            )
        self.target_edit = QLineEdit(self)
        self.target_edit.setClearButtonEnabled(True)
        self.browse_button = QPushButton("Browse…", self)
        self.load_button = QPushButton("Load", self)
        self.load_button.setToolTip(
            "Read the data and check that it fits the model (input shape, dtype, classes)"
        )
        self.val_spin = _percent_spin(self, 0, 50, 10)
        self.val_spin.setToolTip(
            "Share of the training samples held out for validation: fine-tuning picks the "
            "epoch to keep and stops early on it, never on the test split"
        )
        self.test_spin = _percent_spin(self, 0, 80, 20)
        self.test_spin.setToolTip(
            "Share of the samples kept for testing, for a file with a single x / y set or "
            "an image folder (a file with train_x / test_x is used as given)"
        )
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the random split: the same seed gives the same split")
        self.help_button = QToolButton(self)
        self.help_button.setText("?")
        self.help_button.setAutoRaise(True)
        self.help_button.setToolTip(DATA_HELP)
        self.help_button.clicked.connect(
            lambda: QToolTip.showText(
                self.help_button.mapToGlobal(self.help_button.rect().bottomLeft()),
                DATA_HELP,
                self.help_button,
            )
        )
        self.description = QLabel(self)
        self.description.setWordWrap(True)
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.description.setObjectName("dataDescription")
        self.description.setTextFormat(Qt.TextFormat.RichText)
        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setObjectName("dataError")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet(f"color: {hex_color(ALARM_RGB)};")
        self.error_label.hide()
        self._layout()
        self._restore()
        self._on_kind()
        self.kind_combo.currentIndexChanged.connect(self._on_kind)
        self.target_edit.textEdited.connect(self._edited)
        self.target_edit.returnPressed.connect(self.load_requested)
        self.browse_button.clicked.connect(self.browse)
        self.load_button.clicked.connect(self.load_requested)
        for spin in (self.val_spin, self.test_spin, self.seed_spin):
            spin.valueChanged.connect(self._edited)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.kind_combo)
        top.addWidget(self.target_edit, 1)
        top.addWidget(self.browse_button)
        top.addWidget(self.load_button)
        top.addWidget(self.help_button)
        top.addStretch(0)  # takes the room when there is no text field (the digits)
        splits = QGridLayout()
        splits.setContentsMargins(0, 0, 0, 0)
        splits.setHorizontalSpacing(6)
        for col, (text, widget) in enumerate(
            (
                ("Validation", self.val_spin),
                ("Test", self.test_spin),
                ("Split seed", self.seed_spin),
            )
        ):
            caption = QLabel(text, self)
            caption.setStyleSheet(f"color: {MUTED};")
            caption.setToolTip(widget.toolTip())
            caption.setBuddy(widget)
            splits.addWidget(caption, 0, 2 * col)
            splits.addWidget(widget, 0, 2 * col + 1)
        splits.setColumnStretch(6, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addLayout(splits)
        layout.addWidget(self.description)
        layout.addWidget(self.error_label)

    # -- the choice -----------------------------------------------------------------
    def choice(self) -> DataChoice:
        """What is chosen now."""
        kind = str(self.kind_combo.currentData())
        return DataChoice(
            kind=kind,
            target="" if kind == "digits" else self.target_edit.text().strip(),
            val_fraction=self.val_spin.value() / 100.0,
            test_fraction=self.test_spin.value() / 100.0,
            seed=self.seed_spin.value(),
        )

    def set_choice(self, choice: DataChoice, remember: bool = True) -> None:
        """Show ``choice`` (emits ``changed`` once); ``remember=False`` keeps it out of the
        settings (e.g. the digits picked for a demo, not by the user)."""
        widgets = (self.kind_combo, self.target_edit, self.val_spin, self.test_spin, self.seed_spin)
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self._targets[choice.kind] = choice.target
            self.kind_combo.setCurrentIndex(KIND_NAMES.index(choice.kind))
            self.target_edit.setText("" if choice.kind == "digits" else choice.target)
            self.val_spin.setValue(round(choice.val_fraction * 100, 1))
            self.test_spin.setValue(round(choice.test_fraction * 100, 1))
            self.seed_spin.setValue(choice.seed)
            self._show_kind()
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._edited(remember=remember)

    def set_kind(self, kind: str) -> None:
        """Switch to ``kind`` (one of :data:`KIND_NAMES`), keeping its last text."""
        self.set_choice(replace(self.choice(), kind=kind, target=self._targets.get(kind, "")))

    def set_target(self, target: str) -> None:
        """Set the path or function text of the current kind."""
        self.set_choice(replace(self.choice(), target=target))

    def browse(self) -> None:
        """Pick a file or folder for the current kind, then ask to load it."""
        kind = self.choice().kind
        start = self.target_edit.text() or str(self._settings.value("last_dir", str(Path.home())))
        if kind == "file":
            path, _ = QFileDialog.getOpenFileName(self, "Data file", start, FILE_FILTER)
        elif kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Image folder", start)
        else:
            return
        if path:
            self.set_target(path)
            self.load_requested.emit()

    # -- status -----------------------------------------------------------------------
    def show_loaded(self, description: str, notes: tuple[str, ...] = ()) -> None:
        """Show what was loaded (and clear any error)."""
        text = f"✓ {description}"
        self._plain = "\n".join((text, *notes)) if notes else text
        self.description.setText(
            _escape(text)
            + (
                f"<br><span style='color:{MUTED}'>{_escape(' · '.join(notes))}</span>"
                if notes
                else ""
            )
        )
        self.description.setToolTip("The data was read and fits the model")
        self.error_label.clear()
        self.error_label.hide()

    def show_pending(self, text: str) -> None:
        """A neutral line (e.g. "Loading…", "Press Load to read it")."""
        self._plain = text
        self.description.setText(f"<span style='color:{MUTED}'>{_escape(text)}</span>")
        self.description.setToolTip("")
        self.error_label.clear()
        self.error_label.hide()

    def show_error(self, message: str) -> None:
        """Say in the box why the data cannot be used."""
        self.description.clear()
        self._plain = ""
        self.error_label.setText(message)
        self.error_label.show()

    def error_text(self) -> str:
        """The error shown ('' when none)."""
        return self.error_label.text() if not self.error_label.isHidden() else ""

    def description_text(self) -> str:
        """The description line as plain text ('' when none)."""
        return self._plain

    # -- internals --------------------------------------------------------------------
    def _on_kind(self) -> None:
        kind = str(self.kind_combo.currentData())
        self.target_edit.setText(self._targets.get(kind, ""))
        self._show_kind()
        self._edited()

    def _show_kind(self) -> None:
        kind = str(self.kind_combo.currentData())
        hint = dict((k, h) for k, _t, h in KINDS)[kind]
        self.target_edit.setPlaceholderText(hint)
        self.target_edit.setVisible(kind != "digits")
        self.browse_button.setVisible(kind in ("file", "folder"))
        self.kind_combo.setToolTip(TIPS[kind])
        self.target_edit.setToolTip(TIPS[kind])
        uses = USES[kind]
        self.val_spin.setEnabled("val" in uses)
        self.test_spin.setEnabled("test" in uses)
        self.seed_spin.setEnabled("seed" in uses)

    def _edited(self, *_args: object, remember: bool = True) -> None:
        choice = self.choice()
        if choice.kind != "digits":
            self._targets[choice.kind] = choice.target
        self.load_button.setEnabled(choice.ready)
        if remember:
            self._save(choice)
        self.changed.emit(choice)

    def _save(self, choice: DataChoice) -> None:
        s = self._settings
        s.setValue(f"{SETTINGS_GROUP}/kind", choice.kind)
        for kind, target in self._targets.items():
            s.setValue(f"{SETTINGS_GROUP}/target_{kind}", target)
        s.setValue(f"{SETTINGS_GROUP}/val_fraction", choice.val_fraction)
        s.setValue(f"{SETTINGS_GROUP}/test_fraction", choice.test_fraction)
        s.setValue(f"{SETTINGS_GROUP}/seed", choice.seed)

    def remembered(self) -> DataChoice:
        """The last choice the user made, as saved in the settings (digits if none)."""
        s = self._settings
        targets = dict(self._targets)
        for kind in KIND_NAMES[1:]:
            value = s.value(f"{SETTINGS_GROUP}/target_{kind}")
            if isinstance(value, str):
                targets[kind] = value
        kind = s.value(f"{SETTINGS_GROUP}/kind")
        kind = kind if isinstance(kind, str) and kind in KIND_NAMES else "digits"
        try:
            return DataChoice(
                kind=kind,
                target=targets.get(kind, ""),
                val_fraction=float(str(s.value(f"{SETTINGS_GROUP}/val_fraction", 0.1))),
                test_fraction=float(str(s.value(f"{SETTINGS_GROUP}/test_fraction", 0.2))),
                seed=int(str(s.value(f"{SETTINGS_GROUP}/seed", 0))),
            )
        except (TypeError, ValueError):  # settings edited by hand or another version
            return DataChoice(kind=kind, target=targets.get(kind, ""))

    def _restore(self) -> None:
        for kind in KIND_NAMES[1:]:
            value = self._settings.value(f"{SETTINGS_GROUP}/target_{kind}")
            if isinstance(value, str):
                self._targets[kind] = value
        self.blockSignals(True)
        try:
            self.set_choice(self.remembered(), remember=False)
        finally:
            self.blockSignals(False)


def _percent_spin(parent: QWidget, low: float, high: float, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(parent)
    spin.setRange(low, high)
    spin.setDecimals(1)
    spin.setSingleStep(5.0)
    spin.setSuffix(" %")
    spin.setValue(value)
    return spin


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
