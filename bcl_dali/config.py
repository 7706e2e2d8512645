"""The one place where a training run is configured: method presets as data, validated once.

`TrainConfig` holds every setting of a run: the reference code's (BCL's public implementation:
lr, epochs, temperature, momentum-loss beta, prune ratio...) and those this project adds (executor,
precision, optimiser and learning-rate scaling for large batches), in sections by concern (model,
data, augmentation, objective, optimisation, machine, records). Each section checks its own fields
and says of each what a resume may do to it. Fields left as None take their
value from the method preset (weight decay, RandAugment slots) or from the dataset's budget (epochs,
width, warm-up); `resolve()` fills them in and validates, and the resolved config is what is saved
into every run directory and checkpoint. What belongs to the machine rather than to the run (the
worker count, the device) is resolved where it is used, so a run resumes on another machine.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, TypeVar

from bcl_dali.data import DATASETS, DEFAULT_IMBALANCE, LongTailedData, load_data
from bcl_dali.data.folder import FolderLists
from bcl_dali.data.synthetic import DEFAULT_CLASSES
from bcl_dali.device import cpu_count
from bcl_dali.errors import UserError
from bcl_dali.methods import METHODS, method_label
from bcl_dali.methods.moco import MoCoSettings
from bcl_dali.methods.sdclr import SDCLRSettings
from bcl_dali.methods.simclr import ContrastiveSettings
from bcl_dali.policy import MULTI_OP_FLOOR, SINGLE_OP_FLOOR, WEIGHT_NORMS, BoostPolicy
from bcl_dali.runs.loggers import logger_names
from bcl_dali.models.resnet import STEMS


@dataclass(frozen=True)
class Budget:
    """How long and how wide a run is unless the user says otherwise."""

    epochs: int
    width: int
    warmup_epochs: int
    batch_size: int
    lr: float


REFERENCE_BUDGET = Budget(epochs=2000, width=64, warmup_epochs=10, batch_size=512, lr=0.5)
CIFAR_CROP_SCALE = 0.1
DEMO_BUDGET = Budget(epochs=4, width=16, warmup_epochs=1, batch_size=256, lr=0.5)
"""The built-in data set's default: a run that shows learning within minutes on a 2-core CPU."""
BUDGETS: dict[str, Budget] = {"synthetic-lt": DEMO_BUDGET}


@dataclass(frozen=True)
class Recipe:
    """The 224-pixel setting of the paper's ImageNet-LT and Places-LT experiments (BCL follows SDCLR
    there: ResNet-50 with the ImageNet stem, 500 epochs, batch 256, lr 0.5, temperature 0.2,
    RandomResizedCrop from 8% of the image, and the Gaussian blur after grayscale)."""

    arch: str
    stem: str
    image_size: int
    crop_scale: float
    blur: bool
    budget: Budget


IMAGENET_LT = Recipe(arch="resnet50", stem="imagenet", image_size=224, crop_scale=0.08, blur=True,
                     budget=Budget(epochs=500, width=64, warmup_epochs=10, batch_size=256, lr=0.5))
RECIPES: dict[str, Recipe] = {"imagenet-lt": IMAGENET_LT, "places-lt": IMAGENET_LT}
"""--recipe for --dataset folder (the default: imagenet-lt); the paper trains Places-LT as ImageNet-LT."""

ARCHS = ("resnet18", "resnet50")
MIN_WIDTH = 16
"""The narrowest ResNet: PyTorch's CPU channels_last convolution backward (oneDNN, seen with torch
2.14) corrupts memory for 1x1 stride-2 convolutions with fewer than 16 input channels."""
MIN_IMAGE_SIZE = 16
FOLDER_LIST_FIELDS = ("train_list", "test_list", "val_list", "probe_list")
MAX_SEED = 2 ** 32 - 1
EXECUTORS = ("dali", "reference")
OPTIMIZERS = ("sgd", "lars")
LR_SCALES = ("none", "linear", "sqrt")
"""SimCLR's rules for scaling the learning rate by the global batch (bcl_dali.train.optimizers)."""
PRECISIONS = ("auto", "bf16", "fp32")
BAD_IMAGE_POLICIES = ("stop", "skip")
"""What a training image that does not decode does to a run: stop it (the checkpoint kept, the file
named), or leave the file out from then on (recorded in the run)."""
CUDA_GRAPHS = ("none", "augment", "step", "all")
"""What replays from CUDA graphs on a GPU: the augmentation of in-memory images (pipelines.graphs), the
training step (bcl_dali.train.step_graph), both, or neither. The same kernels run either way; the GPU check
(benchmarks/gpu_check.sh) measures each against "none", and the default stays "none" until it has."""

T = TypeVar("T")
FIXED, ADJUSTABLE, OPERATIONAL = "fixed", "adjustable", "operational"
"""What a resume may do to a setting: keep it (it shapes what the run computed so far), change it
although that changes what the run computes from then on (recorded in the run's metrics), or
change it freely (it does not change what the run computes: where the data is, which machine)."""


def setting(default: Any = None, resume: str = FIXED) -> Any:
    """A field of a settings section, with its rule on resume."""
    return field(default=default, metadata={"resume": resume})


@dataclass(frozen=True)
class ModelSettings:
    method: str = setting("bcl-i")
    arch: str | None = setting()
    width: int | None = setting()
    stem: str | None = setting()
    sync_bn: bool = setting(True)

    def check(self) -> None:
        _choice("method", self.method, METHODS)
        if self.arch is not None:
            _choice("arch", self.arch, ARCHS)
        if self.stem is not None:
            _choice("stem", self.stem, STEMS)
        if self.width is not None and self.width < MIN_WIDTH:
            raise UserError(f"--width must be at least {MIN_WIDTH}")


@dataclass(frozen=True)
class DataSettings:
    dataset: str = setting("synthetic-lt")
    recipe: str | None = setting()
    split: str | None = setting()
    imbalance: float | None = setting()
    split_seed: int | None = setting()
    num_classes: int | None = setting()
    data_seed: int = setting(0)
    data_dir: str | None = setting(resume=OPERATIONAL)
    """Where the data is now: it may move (the checkpoint identifies the training files by content)."""
    train_list: str | None = setting(resume=OPERATIONAL)
    test_list: str | None = setting(resume=OPERATIONAL)
    val_list: str | None = setting(resume=OPERATIONAL)
    probe_list: str | None = setting(resume=OPERATIONAL)
    download: bool = setting(False, OPERATIONAL)
    verify_images: bool = setting(False, OPERATIONAL)
    on_bad_image: str | None = setting(resume=ADJUSTABLE)

    def check(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        if self.recipe is not None:
            _choice("recipe", self.recipe, RECIPES)
        if self.on_bad_image is not None:
            _choice("on-bad-image", self.on_bad_image, BAD_IMAGE_POLICIES)
        _check_seeds(("data-seed", self.data_seed), ("split-seed", self.split_seed))
        _refuse_failed([
            (self.imbalance is None or self.imbalance >= 1.0, "--imbalance must be >= 1 (largest / smallest class)"),
            (self.num_classes is None or self.num_classes >= 3,
             "--num-classes must be >= 3 (Many/Medium/Few groups need three)"),
            (self.dataset != "npz" or self.data_dir is not None, "--dataset npz needs --data-dir FILE.npz"),
            (self.dataset != "folder" or self.data_dir is not None,
             "--dataset folder needs --data-dir ROOT (with --train-list and --test-list, or a train/CLASS/ tree)"),
        ])


@dataclass(frozen=True)
class AugmentationSettings:
    image_size: int | None = setting()
    crop_scale: float | None = setting()
    blur: bool | None = setting()
    boost: int | None = setting()
    rand_strength: float = setting(30.0)

    def check(self) -> None:
        _refuse_failed([
            (self.image_size is None or self.image_size >= MIN_IMAGE_SIZE,
             f"--image-size must be at least {MIN_IMAGE_SIZE} pixels"),
            (self.crop_scale is None or 0.0 < self.crop_scale <= 1.0,
             "--crop-scale must lie in (0, 1] (the smallest crop's share of the image)"),
            (self.boost is None or self.boost >= 0, "--boost must be >= 0"),
            (0.0 < self.rand_strength <= 30.0, "--rand-strength must lie in (0, 30]"),
            (not self.boost or self.rand_strength >= (SINGLE_OP_FLOOR if self.boost == 1 else MULTI_OP_FLOOR),
             f"--rand-strength must be >= {SINGLE_OP_FLOOR:g} for k = 1 and >= {MULTI_OP_FLOOR:g} for k >= 2 "
             "(the magnitude floor)"),
        ])


@dataclass(frozen=True)
class ObjectiveSettings:
    """BCL's momentum loss, and the methods' own settings (each method takes the fields its settings name)."""

    beta: float = setting(0.97)
    weight_norm: str = setting("paper")
    """How the momentum loss becomes weights (bcl_dali.train.momentum.WEIGHT_NORMS)."""
    temperature: float = setting(ContrastiveSettings.temperature)
    prune_ratio: float = setting(SDCLRSettings.prune_ratio)
    queue_size: int = setting(MoCoSettings.queue_size)
    target_momentum: float = setting(MoCoSettings.target_momentum)

    def check(self) -> None:
        if not 0.0 <= self.beta < 1.0:
            raise UserError("--beta must lie in [0, 1)")
        _choice("weight-norm", self.weight_norm, WEIGHT_NORMS)


@dataclass(frozen=True)
class OptimisationSettings:
    epochs: int | None = setting(resume=ADJUSTABLE)
    """More (or fewer) epochs on resume: the cosine schedule then runs to the new end from where the run stands."""
    batch_size: int | None = setting()
    lr: float | None = setting(resume=ADJUSTABLE)
    """A remedy for a diverged loss."""
    lr_scale: str = setting("none")
    optimizer: str = setting("sgd")
    weight_decay: float | None = setting()
    warmup_epochs: int | None = setting()
    seed: int = setting(10)

    def check(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr-scale", self.lr_scale, LR_SCALES)
        _check_seeds(("seed", self.seed))
        _refuse_failed([
            (self.epochs is None or self.epochs >= 0, "--epochs must be >= 0"),
            (self.batch_size is None or self.batch_size >= 2,
             "--batch-size must be at least 2 (contrastive pairs need negatives)"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.weight_decay is None or self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.warmup_epochs is None or self.warmup_epochs >= 0, "--warmup-epochs must be >= 0"),
            (None in (self.epochs, self.warmup_epochs) or self.epochs == 0 or self.warmup_epochs < self.epochs,
             f"--warmup-epochs {self.warmup_epochs} leaves no epoch of --epochs {self.epochs} for the cosine decay: "
             "the learning rate would never decay; give fewer warm-up epochs"),
        ])


@dataclass(frozen=True)
class MachineSettings:
    """How this invocation computes, not what: a resume on another machine may change them."""

    device: str = setting("auto", OPERATIONAL)
    executor: str = setting("dali", OPERATIONAL)
    workers: int | None = setting(resume=OPERATIONAL)
    precision: str = setting("auto", ADJUSTABLE)
    """A remedy for a diverged loss (fp32)."""
    compile: bool = setting(False, OPERATIONAL)
    cuda_graphs: str = setting("none", OPERATIONAL)

    def check(self) -> None:
        _choice("executor", self.executor, EXECUTORS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("cuda-graphs", self.cuda_graphs, CUDA_GRAPHS)
        if self.workers is not None and self.workers < 0:
            raise UserError("--workers must be >= 0")


@dataclass(frozen=True)
class RecordSettings:
    """What the run writes along the way."""

    eval_every: int = setting(0, OPERATIONAL)
    snapshot_every: int = setting(500, OPERATIONAL)
    stop_after: int | None = setting(resume=OPERATIONAL)
    probe: bool = setting(False, OPERATIONAL)
    log: str = setting("none", OPERATIONAL)
    """Where else the metrics go (bcl_dali.runs.loggers): none, tensorboard, wandb, or both joined by a comma."""

    def check(self) -> None:
        logger_names(self.log)
        _refuse_failed([
            (self.eval_every >= 0, "--eval-every must be >= 0 (0: only at the end)"),
            (self.snapshot_every >= 0, "--snapshot-every must be >= 0 (0: no snapshots)"),
            (self.stop_after is None or self.stop_after >= 1, "--stop-after must be >= 1"),
        ])


SECTIONS = (ModelSettings, DataSettings, AugmentationSettings, ObjectiveSettings, OptimisationSettings,
            MachineSettings, RecordSettings)
"""A run's settings by concern; each checks its own fields (`check`) and gives each its rule on resume."""


@dataclass(frozen=True)
class TrainConfig(RecordSettings, MachineSettings, OptimisationSettings, ObjectiveSettings, AugmentationSettings,
                  DataSettings, ModelSettings):
    """Every setting of a run: the sections above as one flat record (config.json keeps it flat)."""

    def resolve(self) -> TrainConfig:
        """Fill presets in and validate; raises UserError naming the bad value and the fix."""
        for section in SECTIONS:
            section.check(self)
        self._check_data_flags()
        method = METHODS[self.method]
        recipe_name = _default(self.recipe, "imagenet-lt") if self.dataset == "folder" else None
        recipe = RECIPES.get(recipe_name)
        budget = recipe.budget if recipe else BUDGETS.get(self.dataset, REFERENCE_BUDGET)
        resolved = dataclasses.replace(
            self,
            recipe=recipe_name,
            arch=_default(self.arch, recipe.arch if recipe else "resnet18"),
            stem=_default(self.stem, recipe.stem if recipe else "cifar"),
            image_size=_default(self.image_size, recipe.image_size) if recipe else None,
            crop_scale=_default(self.crop_scale, recipe.crop_scale if recipe else CIFAR_CROP_SCALE),
            blur=_default(self.blur, recipe.blur if recipe else False),
            width=_default(self.width, budget.width),
            epochs=_default(self.epochs, budget.epochs),
            batch_size=_default(self.batch_size, budget.batch_size),
            lr=_default(self.lr, _default(method.lr, budget.lr)),
            warmup_epochs=_default(self.warmup_epochs, min(budget.warmup_epochs, max(_default(self.epochs, budget.epochs) - 1, 0))),
            weight_decay=_default(self.weight_decay, method.weight_decay),
            boost=_default(self.boost, method.boost),
            split=None if self.split is None else str(Path(self.split).resolve()),
            imbalance=_default(self.imbalance, DEFAULT_IMBALANCE) if self.draws_split else self.imbalance,
            split_seed=_default(self.split_seed, 0) if self.draws_split else None,
            num_classes=_default(self.num_classes, DEFAULT_CLASSES) if self.dataset == "synthetic-lt" else None,
            on_bad_image=_default(self.on_bad_image, "stop") if self.dataset == "folder" else None,
            data_dir=None if self.data_dir is None else str(Path(self.data_dir).resolve()),
            **{name: None if getattr(self, name) is None else str(Path(getattr(self, name)).resolve())
               for name in FOLDER_LIST_FIELDS},
        )
        resolved._validate()
        return resolved

    def _validate(self) -> None:
        """Every section's checks on the resolved values, then the rules that join sections."""
        for section in SECTIONS:
            section.check(self)
        _refuse_failed([
            (not (self.graphs_step and self.optimizer != "sgd"),
             f"--cuda-graphs {self.cuda_graphs} graphs the SGD step; --optimizer {self.optimizer} keeps its rate on the "
             "host: use --cuda-graphs augment or none"),
            (not (self.graphs_step and self.compile),
             f"--cuda-graphs {self.cuda_graphs} and --compile both rebuild the step; choose one"),
            (not (self.graphs_augmentation and self.dataset == "folder"),
             "--cuda-graphs augment graphs in-memory images; image folders decode and resize crops of every size, "
             "so use --cuda-graphs step or none with --dataset folder"),
        ])
        self.method_settings()

    @property
    def label(self) -> str:
        """What the run is called: the paper's name where it has one (simclr with --boost 1 is bcl-i),
        with its weight normalisation where that is not the paper's (bcl-i-rank)."""
        return method_label(self.method, self.boost, self.weight_norm)

    def load_data(self, left_out: Iterable[str] = (), verify: bool = False) -> LongTailedData:
        """The run's data; `left_out`: files the run leaves out (RunDir.left_out), `verify`: decode every
        file of an image folder (--verify-images)."""
        return load_data(self.dataset, data_dir=self.data_dir, split=self.split, imbalance=self.imbalance,
                         split_seed=self.split_seed or 0, download=self.download,
                         num_classes=self.num_classes or DEFAULT_CLASSES, verify=verify, left_out=frozenset(left_out),
                         skip_undecodable=self.on_bad_image == "skip", seed=self.data_seed, lists=self.folder_lists)

    def boost_policy(self) -> BoostPolicy:
        """The run's augmentation policy: its boosted slots and strength, crop scale and blur."""
        return BoostPolicy(self.boost, self.rand_strength, crop_scale=(self.crop_scale, 1.0), blur=self.blur)

    def method_settings(self) -> object:
        """The method's own settings (bcl_dali.methods), from the run's fields of the same names (a
        setting no field names keeps its default); checked as they are made."""
        kind = METHODS[self.method].Settings
        return kind(**{f.name: getattr(self, f.name) for f in fields(kind) if hasattr(self, f.name)})

    @property
    def draws_split(self) -> bool:
        """The training set is drawn from the source's pool with --imbalance and --split-seed (no
        --split file, and a source that does not bring its own training set)."""
        return self.split is None and self.dataset != "folder"

    def _check_data_flags(self) -> None:
        """Refuse flags that the chosen data would ignore (they would be recorded as if they had acted)."""
        if self.recipe is not None and self.dataset != "folder":
            raise UserError(f"--recipe {self.recipe} is a setting for image folders; use it with --dataset folder "
                            f"(--dataset {self.dataset} has its own defaults)")
        if self.dataset != "folder":
            for flag, value in (("image-size", self.image_size), *((name.replace("_", "-"), getattr(self, name))
                                                                   for name in FOLDER_LIST_FIELDS)):
                if value is not None:
                    raise UserError(f"--{flag} applies to --dataset folder only; drop it for --dataset {self.dataset}")
        tree = self.dataset == "folder" and self.train_list is None
        ignored = [
            ("num-classes", self.num_classes, self.dataset != "synthetic-lt",
             f"{self.dataset} has the classes its files hold"),
            ("imbalance", self.imbalance, self.split is not None, "the --split file fixes the training set"),
            ("imbalance", self.imbalance, self.dataset == "folder" and not tree,
             "--train-list is the training set as it is"),
            ("split-seed", self.split_seed, self.split is not None, "the --split file fixes the training set"),
            ("split-seed", self.split_seed, self.dataset == "folder",
             "a folder's training set is its list, or its tree's first files by name"),
            ("probe-list", self.probe_list, tree, "a class-folder tree is its own probe pool"),
            ("verify-images", self.verify_images or None, self.dataset != "folder",
             f"{self.dataset}'s images are arrays, decoded when loaded"),
            ("on-bad-image", self.on_bad_image, self.dataset != "folder",
             f"{self.dataset}'s images are arrays, decoded when loaded"),
            ("val-list", self.val_list, tree, "a class-folder tree is its own probe pool"),
        ]
        for flag, value, ignores, why in ignored:
            if value is not None and ignores:
                raise UserError(f"--{flag} does not apply here ({why}); drop it")

    @property
    def folder_lists(self) -> FolderLists:
        return FolderLists(*(getattr(self, name) for name in FOLDER_LIST_FIELDS))

    @property
    def graphs_augmentation(self) -> bool:
        return self.cuda_graphs in ("augment", "all")

    @property
    def graphs_step(self) -> bool:
        return self.cuda_graphs in ("step", "all")

    @property
    def worker_count(self) -> int:
        """--workers, or every core this process may use (a property of the machine, not stored)."""
        return cpu_count() if self.workers is None else self.workers

    def check_resumable_as(self, stored: TrainConfig) -> None:
        """Refuse a resume whose flags change what the stored run computes (the FIXED settings)."""
        for f in fields(self):
            if f.metadata["resume"] != FIXED:
                continue
            mine, theirs = getattr(self, f.name), getattr(stored, f.name)
            if f.name == "split" and None not in (mine, theirs):
                mine, theirs = Path(mine).resolve(), Path(theirs).resolve()
            if mine != theirs:
                raise UserError(f"cannot resume: the run was trained with {f.name}={theirs!r} but this "
                                f"command asks for {mine!r}; drop the flag or start a new run with --out")

    def adjustments_from(self, stored: TrainConfig) -> dict[str, list]:
        """The remedies this resume applies: {field: [before, now]}."""
        return {f.name: [getattr(stored, f.name), getattr(self, f.name)] for f in sorted(fields(self), key=lambda f: f.name)
                if f.metadata["resume"] == ADJUSTABLE and getattr(stored, f.name) != getattr(self, f.name)}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A stored config; one from before the data seed existed drew its images with its `seed`, one
        from before image folders is a CIFAR-stem run cropping from 10%, and one from before data flags
        were checked recorded --imbalance, --split-seed and --num-classes where they did not act; one from
        before boosting was a setting of every method calls it rand_k."""
        data = _renamed(data)
        data = {"data_seed": data.get("seed", cls.seed), "stem": "cifar", "crop_scale": CIFAR_CROP_SCALE, "blur": False,
                **data}
        if data.get("dataset") != "synthetic-lt":
            data["num_classes"] = None
        if data.get("split") is not None or data.get("dataset") == "folder":
            data["split_seed"] = None
        if data.get("split") is not None or data.get("train_list") is not None:
            data["imbalance"] = None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"config has unknown fields {unknown}; it was written by another version of bcl-dali")
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read run config {path}: {error}; point to a run directory made by `train`") from None


RENAMED = {"rand_k": "boost"}
"""Settings under an earlier name: rand_k from before boosting was a setting of every method."""


def _renamed(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with every earlier name replaced by its current one."""
    return {RENAMED.get(key, key): value for key, value in settings.items()}


def _refuse_failed(checks: list[tuple[bool, str]]) -> None:
    """The first failed check's message, as the user's error."""
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def _check_seeds(*seeds: tuple[str, int | None]) -> None:
    _refuse_failed([(value is None or 0 <= value <= MAX_SEED, f"--{flag} must be an integer in [0, {MAX_SEED}], got {value}")
                    for flag, value in seeds])


def _choice(flag: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise UserError(f"unknown --{flag} {value!r}; choose one of {', '.join(choices)}")


def _default(value: T | None, fallback: T) -> T:
    return fallback if value is None else value




ONE_INVOCATION = ("stop_after",)
"""Settings a run's config.json records of the invocation that wrote it, not of the run."""


def read_settings(path: Path) -> dict[str, Any]:
    """A run's settings from a file (`train --config`): a run's config.json, or a TOML file of the
    same keys (dashes or underscores); keys that are not settings are refused, by name."""
    toml = path.suffix == ".toml"
    try:
        text = path.read_text()
    except OSError as error:
        raise UserError(f"cannot read --config {path} ({error.strerror}); give a run's config.json or a .toml "
                        "file of train's settings") from None
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"--config {path} is not valid {'TOML' if toml else 'JSON'} ({error}); fix the file, or "
                        "give a run's config.json or a .toml file") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path} holds a {type(data).__name__}; it must map settings to values")
    settings = _renamed({key.replace("-", "_"): value for key, value in data.items()})
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - set(kinds))
    if unknown:
        raise UserError(f"--config {path} has unknown settings {unknown}; its keys are train's flags without the "
                        "leading dashes (see train --help)")
    for key, value in settings.items():
        if not _has_type(value, kinds[key]):
            raise UserError(f"--config {path}: {key} = {value!r} has the wrong type (it takes {kinds[key]}); write "
                            f"it as train's --{key.replace('_', '-')} takes it")
    if not toml:  # a run's config.json, maybe from an older version: read as a resume reads it
        settings = dataclasses.asdict(TrainConfig.from_dict(settings))
    return {key: value for key, value in settings.items() if toml or key not in ONE_INVOCATION}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether a file's value fits a field annotated `annotation` (e.g. "int | None")."""
    accepted = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),)}
    kinds = tuple(kind for name in annotation.split("|") for kind in accepted.get(name.strip(), (object,)))
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
