"""PruneScope's engine: pruning sessions, methods, history, statistics, files. Never imports Qt.

The public API imports from here, whatever the inner layout::

    from core import PruningSession, L1Unstructured, LnStructured, run_job, stats_job

Inside, the engine is grouped by concern (an import-linter layers contract
keeps the order): ``core.common`` (errors, jobs, chunking) under
``core.pruning`` (sessions, methods, masks, operations, history, vault) under
``core.io`` (checkpoints, recipes, torch's pruning format), ``core.analysis``
(statistics), ``core.viz`` (heatmap reductions, the pattern-lab figure) and
``core.demos`` (the built-in models and data); above them ``core.training``
(evaluation data, evaluation, masked fine-tuning) and ``core.speed`` (benchmarks,
sparse kernels, advice, the cost lab). Physical channel removal is
``core.pruning.groups`` and ``core.pruning.slim``.
"""

from core.analysis.stats import LayerStats, ModelStats, stats_job
from core.common.errors import (
    DiskSpaceError,
    InvalidAmountError,
    InvalidMaskError,
    JobCancelled,
    NonFiniteWeightsError,
    PruningError,
    UnknownParameterError,
    UnsupportedParameterError,
)
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job
from core.demos import DEMO_NAMES, evaluate_accuracy, load_demo, load_digits
from core.io.checkpoints import (
    FORMATS,
    SavedFiles,
    SavedSession,
    format_for_path,
    read_session,
    read_sparse,
    save,
    save_job,
)
from core.io.loading import (
    FactoryRequired,
    OpenedModel,
    StateMismatch,
    TrustRequired,
    open_model,
    open_model_job,
    open_session,
)
from core.io.recipe import Recipe, load_recipe, recipe_of, replay_job, save_recipe
from core.io.references import ModelReference, parse_model_spec
from core.io.torch_interop import session_from_torch_pruned, to_torch_pruned
from core.pruning.groups import ChannelGroup, GroupPrune, channel_groups
from core.pruning.history import Entry, History
from core.pruning.masks import PackedMask
from core.pruning.methods import (
    METHODS,
    BlockSparsity,
    CustomMask,
    L1Unstructured,
    LnStructured,
    MagnitudeThreshold,
    NMSparsity,
    PruningMethod,
    QuantileRule,
    RandomStructured,
    RandomUnstructured,
    make_method,
)
from core.pruning.operations import (
    GlobalPrune,
    LayerPrune,
    MakePermanent,
    Mode,
    Operation,
    OutsideChange,
    PaintStroke,
    ReplaceModel,
    Reset,
    WeightUpdate,
    operation_from_dict,
)
from core.pruning.session import PruningSession
from core.pruning.slim import SlimResult, harvest_candidates, slim_job, slim_operation
from core.speed import (
    BenchmarkConfig,
    BenchmarkReport,
    FormResult,
    SparseLinear,
    benchmark_job,
    cost_lab_job,
    sparsify_job,
    speed_advice,
    speed_test_job,
)
from core.training import (
    DataError,
    Dataset,
    EpochRecord,
    Evaluation,
    FinetuneConfig,
    FinetuneResult,
    check_data,
    evaluate_job,
    evaluate_session_job,
    finetune_job,
    load_data,
    load_data_job,
)

__all__ = [
    "DEMO_NAMES",
    "FORMATS",
    "METHODS",
    "NEVER_CANCELLED",
    "BenchmarkConfig",
    "BenchmarkReport",
    "BlockSparsity",
    "CancelToken",
    "ChannelGroup",
    "CustomMask",
    "DataError",
    "Dataset",
    "DiskSpaceError",
    "Entry",
    "EpochRecord",
    "Evaluation",
    "FactoryRequired",
    "FinetuneConfig",
    "FinetuneResult",
    "FormResult",
    "GlobalPrune",
    "GroupPrune",
    "History",
    "InvalidAmountError",
    "InvalidMaskError",
    "Job",
    "JobCancelled",
    "L1Unstructured",
    "LayerPrune",
    "LayerStats",
    "LnStructured",
    "MagnitudeThreshold",
    "MakePermanent",
    "Mode",
    "ModelReference",
    "ModelStats",
    "NMSparsity",
    "NonFiniteWeightsError",
    "OpenedModel",
    "Operation",
    "OutsideChange",
    "PackedMask",
    "PaintStroke",
    "Progress",
    "PruningError",
    "PruningMethod",
    "PruningSession",
    "QuantileRule",
    "RandomStructured",
    "RandomUnstructured",
    "Recipe",
    "ReplaceModel",
    "Reset",
    "SavedFiles",
    "SavedSession",
    "SlimResult",
    "SparseLinear",
    "StateMismatch",
    "TrustRequired",
    "UnknownParameterError",
    "UnsupportedParameterError",
    "WeightUpdate",
    "benchmark_job",
    "channel_groups",
    "check_data",
    "cost_lab_job",
    "evaluate_accuracy",
    "evaluate_job",
    "evaluate_session_job",
    "finetune_job",
    "format_for_path",
    "harvest_candidates",
    "load_data",
    "load_data_job",
    "load_demo",
    "load_digits",
    "load_recipe",
    "make_method",
    "open_model",
    "open_model_job",
    "open_session",
    "operation_from_dict",
    "parse_model_spec",
    "read_session",
    "read_sparse",
    "recipe_of",
    "replay_job",
    "run_job",
    "save",
    "save_job",
    "save_recipe",
    "session_from_torch_pruned",
    "slim_job",
    "slim_operation",
    "sparsify_job",
    "speed_advice",
    "speed_test_job",
    "stats_job",
    "to_torch_pruned",
]
