"""Opening and saving models from the window: dialogs, trust, factories, recent files.

Every open and save runs in the controller's worker (core's loader and
savers); this module asks the user what only the user can say: whether to
trust a pickled file, which code builds the model of a weights-only file
(remembered per file), where to save and in which format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from core.demos import DEMO_NAMES
from core.io.checkpoints import SavedFiles
from core.io.loading import FactoryRequired, TrustRequired
from gui.session.controller import SessionController
from gui.session.loaded import LoadedModel, OpenRequest

OPEN_FILTER = "Models (*.pt *.pth *.bin *.safetensors *.prunescope *.ts *.jit *.zip);;All files (*)"
#: File > Save as: (filter, format, suffix). The filter chosen picks the format.
SAVE_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("state_dict, safetensors (*.safetensors)", "state_dict", ".safetensors"),
    ("state_dict, PyTorch (*.pt *.pth)", "state_dict", ".pt"),
    ("PruneScope session: masks, originals, history (*.prunescope)", "session", ".prunescope"),
    ("torch.nn.utils.prune format: weight_orig + weight_mask (*.pt)", "torch_prune", ".pt"),
    ("Sparse: kept values + bit masks (*.safetensors)", "sparse", ".safetensors"),
    ("Slim: the physically smaller model + layer shapes (*.safetensors)", "slim", ".safetensors"),
    ("torch.export program (*.pt2)", "export", ".pt2"),
    ("ONNX (*.onnx)", "onnx", ".onnx"),
)
SAVE_SUFFIXES = frozenset(suffix for _f, _fmt, suffix in SAVE_FORMATS) | {".pth"}
#: Factories offered for weights-only files: the demos' own architectures.
DEMO_FACTORIES: tuple[tuple[str, dict[str, Any]], ...] = tuple(
    ("core.demos:build_demo_architecture", {"name": name}) for name in DEMO_NAMES
)
MAX_RECENT = 8


class FactoryDialog(QDialog):
    """Asks which code builds the model of a weights-only file, and its arguments."""

    def __init__(
        self, parent: QWidget | None, file: str, factory: str, args: dict[str, Any]
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Which code builds this model?")
        explanation = QLabel(
            f"{Path(file).name} holds only weights (a state_dict). Name the Python function "
            "that builds the model, as package.module:function (importable, or in a .py file "
            "beside the weights), and its keyword arguments. The answer is remembered for "
            "this file."
        )
        explanation.setWordWrap(True)
        self.factory = QComboBox()
        self.factory.setEditable(True)
        self.factory.setToolTip("package.module:function that returns the nn.Module")
        for name, demo_args in DEMO_FACTORIES:
            self.factory.addItem(f"{name}  {json.dumps(demo_args)}", (name, demo_args))
        self.factory.setEditText(factory)
        self.factory.activated.connect(self._picked)
        self.args = QLineEdit(json.dumps(args) if args else "{}")
        self.args.setToolTip('Keyword arguments as a JSON object, e.g. {"num_classes": 10}')
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b;")
        form = QFormLayout(self)
        form.addRow(explanation)
        form.addRow("Weights", QLabel(Path(file).name))
        form.addRow("Factory", self.factory)
        form.addRow("Arguments", self.args)
        form.addRow(self.error)
        form.addRow(buttons)
        self.resize(620, self.sizeHint().height())

    def _picked(self, index: int) -> None:
        name, args = self.factory.itemData(index)
        self.factory.setEditText(name)
        self.args.setText(json.dumps(args))

    def choice(self) -> tuple[str, dict[str, Any]]:
        """The factory and its arguments (valid once the dialog was accepted)."""
        args = json.loads(self.args.text() or "{}")
        return self.factory.currentText().split("  ")[0].strip(), args

    def _accept(self) -> None:
        try:
            factory, args = self.choice()
        except json.JSONDecodeError as exc:
            self.error.setText(f"The arguments are not valid JSON: {exc}")
            return
        if ":" not in factory or not isinstance(args, dict):
            self.error.setText("Give package.module:function, and the arguments as {...}")
            return
        self.accept()


class ModelFiles(QObject):
    """The window's File menu work: open (file, folder, factory), save as, recent files.

    Signals:
        recent_changed(): the recent list changed.
        message(text): something to say in the status bar.
        error(text): something to show in an error dialog.
        open_failed(): opening failed or was refused (the current model stays).
    """

    recent_changed = Signal()
    message = Signal(str)
    error = Signal(str)
    open_failed = Signal()

    def __init__(
        self,
        window: QWidget,
        controller: SessionController,
        settings: QSettings,
        may_discard: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._may_discard = may_discard
        self._controller = controller
        self._settings = settings

    # -- opening ------------------------------------------------------------------------
    def open_dialog(self) -> None:
        """Ask for a model file and open it."""
        if not self._may_discard():
            return
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Open model", self.last_dir(), OPEN_FILTER
        )
        if path:
            self.open_path(path, asked=True)

    def open_folder_dialog(self) -> None:
        """Ask for a model folder (config.json + model.safetensors) and open it."""
        if not self._may_discard():
            return
        path = QFileDialog.getExistingDirectory(
            self._window, "Open a Hugging Face model folder", self.last_dir()
        )
        if path:
            self.open_path(path, asked=True)

    def open_request(self, request: OpenRequest, *, interactive: bool = True) -> bool:
        """Open what ``request`` names (a file, folder, demo or factory) in a worker."""
        if request.weights is None and not request.args and Path(request.spec).exists():
            return self.open_path(request.spec, trust=request.trust, interactive=interactive)
        return self._open(request, interactive)

    def open_path(
        self, path: str, *, trust: bool = False, interactive: bool = True, asked: bool = False
    ) -> bool:
        """Open a model file or folder in a worker.

        A weights-only file opens with the factory remembered for it. With
        ``interactive``, the user is asked first whether unsaved pruning may be
        discarded (unless ``asked`` already), and to trust a pickle or name a
        factory when the loader needs it; otherwise those are error messages.
        """
        if interactive and not asked and not self._may_discard():
            return False
        remembered = self.remembered_factory(path)
        if remembered is not None:
            factory, args = remembered
            request = OpenRequest(factory, path, tuple(sorted(args.items())), trust)
        else:
            request = OpenRequest(path, trust=trust)
        return self._open(request, interactive)

    def _open(self, request: OpenRequest, interactive: bool) -> bool:
        opening = self._controller.open(request)
        opening.finished.connect(self._opened)
        opening.failed.connect(lambda error: self._refused(request, error, interactive))
        return True

    def _refused(self, request: OpenRequest, error: BaseException, interactive: bool) -> None:
        """The loader needs the user (trust, a factory), or opening failed (reported already)."""
        refusal = isinstance(error, TrustRequired | FactoryRequired)
        if refusal and not interactive:
            self._show_error(str(error))
        elif isinstance(error, TrustRequired):
            self._ask_trust(request, error)
        elif isinstance(error, FactoryRequired):
            self._ask_factory(request, error)
        self.open_failed.emit()

    def _ask_trust(self, request: OpenRequest, error: TrustRequired) -> None:
        answer = QMessageBox.warning(
            self._window,
            "Open a pickled model?",
            f"{error}\n\nOpen it anyway?",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Open:
            self._open(OpenRequest(request.spec, request.weights, request.args, True), True)

    def _ask_factory(self, request: OpenRequest, _error: FactoryRequired) -> None:
        file = request.weights or request.spec
        factory, args = self.remembered_factory(file) or DEMO_FACTORIES[0]
        dialog = FactoryDialog(self._window, file, factory, dict(args))
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        factory, args = dialog.choice()
        self._open(OpenRequest(factory, file, tuple(sorted(args.items())), request.trust), True)

    def _opened(self, loaded: LoadedModel) -> None:
        if loaded.notes:
            self.message.emit(" ".join(loaded.notes))
        source = loaded.source
        if source and Path(source).exists():
            self._settings.setValue("last_dir", str(Path(source).resolve().parent))
            self.remember_recent(str(Path(source).resolve()))
            reference = loaded.reference
            if reference is not None and reference.kind == "factory" and reference.weights:
                self.remember_factory(source, reference.target, dict(reference.args))

    # -- factories remembered per file -----------------------------------------------------
    def remembered_factory(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """The factory (and arguments) last used to open ``path``, if any."""
        value = self._settings.value(f"factories/{_key(path)}")
        try:
            data = json.loads(str(value)) if value else None
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("factory"), str):
            return None
        return data["factory"], dict(data.get("args", {}))

    def remember_factory(self, path: str, factory: str, args: dict[str, Any]) -> None:
        """Open ``path`` with this factory from now on."""
        value = json.dumps({"factory": factory, "args": args})
        self._settings.setValue(f"factories/{_key(path)}", value)

    # -- recent files -----------------------------------------------------------------------
    def recent(self) -> list[str]:
        """Recently opened files and folders, newest first."""
        value = self._settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def remember_recent(self, path: str) -> None:
        """Put ``path`` first in the recent list."""
        recent = [p for p in self.recent() if p != path]
        self._settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._settings.sync()
        self.recent_changed.emit()

    def last_dir(self) -> str:
        """The folder dialogs start in: the last one used."""
        return str(self._settings.value("last_dir", str(Path.home())))

    # -- saving -------------------------------------------------------------------------------
    def save_dialog(self) -> None:
        """Ask where and in which format to save the pruned model."""
        if self._controller.session is None:
            return
        filters = ";;".join(text for text, _fmt, _suffix in SAVE_FORMATS)
        start = Path(self.last_dir()) / "pruned.safetensors"
        path, chosen = QFileDialog.getSaveFileName(
            self._window, "Save pruned model", str(start), filters
        )
        if not path:
            return
        format, suffix = next(
            ((fmt, sfx) for text, fmt, sfx in SAVE_FORMATS if text == chosen),
            ("state_dict", ".safetensors"),
        )
        if not Path(path).suffix:
            path += suffix
        self.save_to(path, format)

    def save_to(self, path: str, format: str | None = None) -> bool:
        """Save in a worker; False (with a message) when the name or the moment is wrong."""
        from core.io.checkpoints import format_for_path

        if self._controller.session is None or self._controller.busy:
            self._show_error("Wait for the running job to finish (or cancel it) first.")
            return False
        if Path(path).suffix not in SAVE_SUFFIXES:
            self._show_error(
                f"{Path(path).name}: choose one of "
                + ", ".join(sorted(SAVE_SUFFIXES))
                + " (the suffix picks the format)"
            )
            return False
        self._settings.setValue("last_dir", str(Path(path).resolve().parent))
        self._controller.save(path, format or format_for_path(path)).finished.connect(self._saved)
        return True

    def _saved(self, files: SavedFiles) -> None:
        recipe = f" and {files.recipe.name}" if files.recipe is not None else ""
        size = files.bytes / 2**20
        self.message.emit(f"Saved {files.path.name}{recipe} ({files.format}, {size:.1f} MiB)")

    def _show_error(self, message: str) -> None:
        self.error.emit(message)


def _key(path: str) -> str:
    """A settings key for a file: its absolute path, with separators QSettings keeps."""
    return str(Path(path).resolve()).replace("/", "|").replace("\\", "|")
