"""The library's BoostedAugmentation: a user's loop gets the epochs `train` draws, each sample's loss
drives its own next ops, its state resumes exactly, and it takes the images a researcher has."""
from __future__ import annotations

import dataclasses
import numpy as np
import pytest
import torch
from PIL import Image

import bcl_dali
from bcl_dali.config import TrainConfig
from bcl_dali.data.generated_jpegs import write_jpeg_folder
from bcl_dali.train.trainer import Trainer

CLASSES = 3


@pytest.fixture(scope="module")
def data():
    return bcl_dali.load_data("synthetic-lt", num_classes=CLASSES)


def _boost(data, **settings) -> bcl_dali.BoostedAugmentation:
    return bcl_dali.BoostedAugmentation(data.train.images, batch_size=64, device="cpu", workers=1,
                                        **{"boost": 1, "seed": 3} | settings)


def _losses(indices: torch.Tensor) -> torch.Tensor:
    """A loss that is a known function of the sample: its index, so the weights are a formula of it."""
    return indices.double().float() * 0.01


def _run_epoch(boost: bcl_dali.BoostedAugmentation) -> tuple[np.ndarray, list[torch.Tensor]]:
    order, views = [], []
    for indices, batch in boost:
        order.append(indices.numpy())
        views.append(batch.clone())
        boost.update(indices, _losses(indices))
    return np.concatenate(order), views


def _planned(boost: bcl_dali.BoostedAugmentation) -> list:
    """Every plan the object draws, as it draws it."""
    plans, plan = [], boost.planner.plan
    boost.planner.plan = lambda images: plans.append(plan(images)[0]) or (plans[-1], None)
    return plans


def test_a_users_loop_draws_the_epochs_train_draws(data):
    """Same seed, same losses: the object's two epochs are the trainer's plans, order and every
    parameter of every view. Mutation caught: the object's crop scale apart from train's."""
    boost = _boost(data)
    plans = _planned(boost)
    config = TrainConfig(method="bcl-i", dataset="synthetic-lt", num_classes=CLASSES, width=16, batch_size=64,
                         epochs=2, device="cpu", seed=3).resolve()
    trainer = Trainer(config, data, torch.device("cpu"), executor=None)
    for epoch in range(2):
        _run_epoch(boost)
        expected, _ = trainer.plan_epoch()
        np.testing.assert_array_equal(plans[epoch].order, expected.order)
        for ours, theirs in zip(plans[epoch].params.views, expected.params.views):
            for field in dataclasses.fields(ours):
                np.testing.assert_array_equal(getattr(ours, field.name), getattr(theirs, field.name), field.name)
        trainer.momentum.load_state_dict(boost.momentum.state_dict())


def test_each_samples_loss_sets_its_own_next_magnitude(data):
    """BCL-I: after an epoch whose loss of sample i is 0.01 i, sample i's magnitude is 10 + 20 w_i with
    w from the paper's normalisation, computed here in numpy. Mutation caught: `update` pairing the
    losses with the batch's positions instead of its sample indices."""
    boost = _boost(data)
    plans = _planned(boost)
    _run_epoch(boost)
    assert boost.epochs_done == 1 and len(plans) == 1
    list(iter(boost))
    s = np.arange(len(data.train.labels)) * 0.01
    z = (s - s.mean()) / s.std()
    w = z / np.abs(z).max() / 2 + 0.5
    second = plans[1]
    np.testing.assert_allclose(second.params.view1.op_magnitude[:, 0], 10 + 20 * w[second.order], atol=1e-4)
    np.testing.assert_allclose(boost.weights.numpy(), w, atol=1e-6)


def test_its_state_resumes_the_next_epoch_exactly(data):
    """A second object loading the first's state_dict after one epoch draws the same second epoch,
    to the pixel. Mutation caught: the planner's random stream left out of the state."""
    first = _boost(data)
    _run_epoch(first)
    again = _boost(data, seed=99)
    again.load_state_dict(first.state_dict())
    order, views = _run_epoch(first)
    order_again, views_again = _run_epoch(again)
    np.testing.assert_array_equal(order, order_again)
    assert all(torch.equal(a, b) for a, b in zip(views, views_again))


def test_the_pil_executor_makes_the_dali_executors_views(data):
    """Either executor behind the object: the same plan, the same views (the executors' parity)."""
    dali = _boost(data, seed=1)
    pil = _boost(data, seed=1, executor="pil")
    for boost in (dali, pil):
        boost.momentum.ema = _losses(torch.arange(len(data.train.labels)))
        boost.momentum.end_epoch()
    (order_dali, views_dali), (order_pil, views_pil) = _run_epoch(dali), _run_epoch(pil)
    np.testing.assert_array_equal(order_dali, order_pil)
    difference = (torch.cat(views_dali).float() - torch.cat(views_pil).float()).abs()
    assert difference.mean() < 0.02, difference.mean()


class _ListDataset:
    """A torchvision-style dataset of (PIL image, label) items, with neither `samples` nor `data`."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.items = [(Image.fromarray(image), 0) for image in pixels]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def test_a_source_from_what_a_researcher_has(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    pixels = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    for given in (pixels, torch.from_numpy(pixels), _ListDataset(pixels), type("CIFARLike", (), {"data": pixels})()):
        source = bcl_dali.image_source(given)
        np.testing.assert_array_equal(np.asarray(source), pixels)
    tree = write_jpeg_folder(tmp_path / "tree", [3, 2, 2], 1, sides=(16, 24))
    folder = torchvision.datasets.ImageFolder(tree / "train")
    files = bcl_dali.image_source(folder)
    assert [str(files.path(i)) for i in range(len(files))] == [str(path) for path, _ in folder.samples]
    (tree / "train" / ".ipynb_checkpoints").mkdir()
    (tree / "train" / ".ipynb_checkpoints" / "x.jpg").write_bytes(b"not an image")
    under = bcl_dali.image_source(tree / "train")
    assert [str(under.path(i)) for i in range(len(under))] == [str(path) for path, _ in folder.samples]
    assert files.sizes(np.arange(len(files)))[0].tolist() == [Image.open(p).height for p, _ in folder.samples]


@pytest.mark.parametrize("given, error, fragment", [
    (np.zeros((2, 8, 8), np.uint8), ValueError, "(N, H, W, 3) uint8"),
    (_ListDataset(np.zeros((1, 8, 8, 3), np.uint8)).items + [(Image.new("RGB", (4, 4)), 0)], ValueError,
     "images of several sizes are read from files"),
    (object(), TypeError, "cannot take images from a object"),
    ("no/such/folder", bcl_dali.UserError, "no/such/folder is not a folder"),
])
def test_images_it_cannot_take_are_refused_with_the_fix(given, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        bcl_dali.image_source(given)


def test_the_backbone_evaluated_is_the_users_forward(data):
    """evaluate_backbone reads features as the backbone's own forward, flattened, of the normalised images."""
    from bcl_dali.eval.features import extract_features
    from bcl_dali.eval.protocol import _Features
    from bcl_dali.pipelines.normalize import normalize_uint8

    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(2))
    features = extract_features(_Features(backbone), data.test.images, torch.device("cpu"), None)
    with torch.no_grad():
        expected = backbone(normalize_uint8(torch.from_numpy(np.asarray(data.test.images)))).flatten(1)
    torch.testing.assert_close(features, expected)
    result = bcl_dali.evaluate_backbone(backbone, data, "cpu", ["full"])
    assert len(result.shots["full"].per_class) == CLASSES and 0 <= result.knn_top1 <= 100


@pytest.mark.slow
def test_the_package_face_names_resolve_and_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, bcl_dali; assert 'torch' not in sys.modules and 'nvidia.dali' not in sys.modules; "
            "names = [getattr(bcl_dali, n) for n in bcl_dali.__all__]; print(len(names))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(bcl_dali.__all__)


def test_batches_train_would_refuse_are_refused_when_it_is_made(monkeypatch):
    """A last batch of one image (no negatives), and a process count with no process group behind it."""
    pixels = np.zeros((5, 8, 8, 3), np.uint8)
    with pytest.raises(bcl_dali.UserError, match="last batch of one image"):
        bcl_dali.BoostedAugmentation(pixels, batch_size=4, device="cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="no process group is initialised"):
        bcl_dali.BoostedAugmentation(pixels, batch_size=5, device="cpu")
