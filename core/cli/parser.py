"""The headless commands' argument parser (see :data:`COMMANDS`).

The pruning methods' options are generated from their schemas
(:mod:`core.cli.options`); the formats come from :mod:`core.io.checkpoints`.
Every command's ``--help`` ends with examples. ``open`` (the window) is not
parsed here: ``main.py`` hands it to the GUI, since the engine never imports Qt.
"""

from __future__ import annotations

import argparse

from core.cli.options import add_method_options, parse_shape
from core.cli.speed import add_speed_commands
from core.cli.training import add_training_commands
from core.demos import DEMO_NAMES
from core.io.checkpoints import FORMATS

#: The headless sub-commands, in help order.
COMMANDS: tuple[str, ...] = (
    "stats",
    "prune",
    "apply",
    "eval",
    "finetune",
    "bench",
    "slim",
    "costlab",
)

_DEMOS = ", ".join(f"demo:{name}" for name in DEMO_NAMES)

DESCRIPTION = f"""\
PruneScope without its window: statistics, pruning and recipe replay on the terminal.

MODEL is a demo ({_DEMOS}), a model file (.pt, .pth, .bin, .safetensors, TorchScript,
a PruneScope .prunescope checkpoint), a Hugging Face-style model folder, or
package.module:factory with --weights FILE and --arg KEY=VALUE. A file that holds a
whole pickled model runs code when it is opened, so it needs --trust.

`%(prog)s open MODEL` (or just `%(prog)s MODEL`) opens the window instead.
Exit status: 0 success, 1 failure (one line on stderr; --debug for the traceback),
2 bad usage."""

STATS_EPILOG = """\
examples:
  %(prog)s demo:cnn
  %(prog)s demo:resnet18 --input-shape 1,3,224,224 --json > stats.json
  %(prog)s mypkg.nets:make_net --weights net.safetensors --arg width=64
  %(prog)s whole_model.pt --trust"""

PRUNE_EPILOG = """\
amounts: --amount 0.3 or 30%% is a fraction of what remains, --amount 120 (no decimal
point) a count of the method's units (weights, channels or blocks), as torch.nn.utils.prune
treats floats and ints.

examples:
  %(prog)s demo:cnn --method l1_unstructured --amount 30%% --out cnn.safetensors
  %(prog)s demo:resnet18 --method ln_structured --amount 0.5 --norm 1 --dim 0 \\
      --layers 'layer1.*,classifier' --out r18.pt
  %(prog)s demo:mlp --method n_m --keep 2 --group 4 --out mlp.safetensors
  %(prog)s demo:cnn --method random_unstructured --amount 120 --seed 7 --out cnn.pt
  %(prog)s demo:resnet18 --method l1_unstructured --global --amount 0.8 \\
      --cap stem.conv=0.5 --cap 'layer4.*=90%%' --out r18.prunescope"""

APPLY_EPILOG = """\
examples:
  %(prog)s demo:cnn --recipe cnn.safetensors.recipe.json --out cnn_again.pt
  %(prog)s mypkg.nets:make_net --weights net.safetensors --recipe pruned.recipe.json \\
      --out pruned.safetensors"""


def build_parser(prog: str = "prunescope") -> argparse.ArgumentParser:
    """The parser of the headless commands (``prog`` names the program in help and errors)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options()

    stats = commands.add_parser(
        "stats",
        parents=[common],
        help="per-layer and whole-model statistics",
        description="Per-layer and whole-model statistics: parameters, non-zeros, sparsity,\n"
        "fully pruned rows, FLOPs (dense and effective) and bytes (dense and sparse).",
        epilog=STATS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _input_shape_option(
        stats,
        "input shape for counting FLOPs, e.g. 1,3,224,224 (default: the model's own example "
        "input where it has one, such as a demo's; otherwise no FLOPs)",
    )
    stats.add_argument(
        "--json",
        action="store_true",
        help="print a JSON document (format prunescope-stats) instead of tables",
    )

    prune = commands.add_parser(
        "prune",
        parents=[common],
        help="prune a model with one operation and save it",
        description="Prune a model with one operation (one method on the chosen layers, or a\n"
        "global ranking across them) and save the result with its recipe.",
        epilog=PRUNE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _output_options(prune)
    selection = prune.add_argument_group("layers")
    selection.add_argument(
        "--layers",
        metavar="PATTERNS",
        help="comma-separated parameter or module names or glob patterns, e.g. "
        "'features.0.weight,layer1.*' (default: every Linear and Conv weight, as in the window)",
    )
    selection.add_argument(
        "--mode",
        choices=("further", "set"),
        default="further",
        help="further: prune the amount of what still remains (torch's semantics, the default); "
        "set: recompute each layer from its original weights so its sparsity is the amount",
    )
    selection.add_argument(
        "--global",
        dest="global_",
        action="store_true",
        help="rank the selected layers' weights together by |w| and prune the smallest "
        "(method l1_unstructured only)",
    )
    selection.add_argument(
        "--cap",
        action="append",
        default=[],
        metavar="NAME=FRACTION",
        help="with --global: keep layer NAME (a name or glob pattern) at most FRACTION sparse, "
        "e.g. conv1=0.5 or 'fc*=90%%'; repeat for more layers",
    )
    add_method_options(prune)

    apply = commands.add_parser(
        "apply",
        parents=[common],
        help="replay a recipe on a model and save it",
        description="Replay a recipe (saved beside every file the window or `prune` writes)\n"
        "on a model: the masks come out bit-identical.",
        epilog=APPLY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument(
        "--recipe", required=True, metavar="RECIPE", help="the recipe file (.recipe.json)"
    )
    _output_options(apply)
    for command in (stats, prune, apply):  # for usage errors found after parsing
        command.set_defaults(command_parser=command)
    add_training_commands(commands, common, _output_options, _input_shape_option)
    add_speed_commands(commands, common, _output_options, _input_shape_option)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """MODEL and how to open it, plus --quiet and --debug: every command has them."""
    common = argparse.ArgumentParser(add_help=False)
    model = common.add_argument_group("model")
    model.add_argument(
        "model",
        metavar="MODEL",
        help=f"the model: {_DEMOS}, a file, a folder, or package.module:factory",
    )
    model.add_argument(
        "--weights",
        metavar="FILE",
        help="with package.module:factory: the state_dict file to load (.pt, .safetensors)",
    )
    model.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with package.module:factory: a keyword argument, VALUE read as JSON "
        "(width=64, sizes=[8,4], name='\"x\"'; text that is not JSON is a string); repeatable",
    )
    model.add_argument(
        "--trust",
        action="store_true",
        help="allow opening a whole pickled model (torch.save(model)): unpickling runs code "
        "from the file, so only for files you trust",
    )
    general = common.add_argument_group("output")
    general.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars (also off when not a terminal)"
    )
    general.add_argument(
        "--debug", action="store_true", help="print the full traceback when a command fails"
    )
    return common


def _input_shape_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, text: str
) -> None:
    parser.add_argument("--input-shape", type=parse_shape, metavar="SHAPE", help=text)


def _output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("saving")
    group.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="where to save the pruned model; its recipe goes beside it as FILE.recipe.json",
    )
    group.add_argument(
        "--format",
        choices=FORMATS,
        help="state_dict (zeros baked in, the model's own keys; the default), session "
        "(.prunescope: reopens with masks and history), torch_prune (weight_orig + weight_mask), "
        "sparse (kept values + bit mask), export (torch.export .pt2), onnx "
        "(default: from FILE's suffix: .prunescope session, .pt2 export, .onnx onnx, "
        "others state_dict)",
    )
    _input_shape_option(
        group,
        "example input shape the export and onnx formats trace the model with, e.g. "
        "1,3,224,224 (default: the model's own example input, such as a demo's)",
    )
