"""Soft targets from the m codes (train.maybe_labels: soft): the target matrix after regrouping,
its bad inputs, the pipelines that carry it, training runs on the feature cache, on images and
fine-tuned, the backup signature, and the train rule's dependency on decoded.csv."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from training_helpers import limit_threads, make_tree, pretrained_weights, split_files

from fashionai.attributes import ATTRIBUTES
from fashionai.config import ConfigError, validate_config
from fashionai.decoding import DECODED_COLUMNS
from fashionai.regrouping import plan_regroup
from fashionai.training.settings import TrainSettings, uses_feature_cache
from fashionai.training.targets import class_groups, load_soft_targets, read_codes, soft_targets
from tests.workflow_helpers import CONFIG_REGROUP, REPO, run_snakemake, tiny_config

SLEEVE = "sleeve_length_labels"
COLLAR = "collar_design_labels"
W = 0.25


def regrouped_labels(category: str, spec: dict | None) -> dict:
    """labels.json of a regrouped tree, as rule regroup writes it."""
    plan = plan_regroup(category, spec)
    classes = [
        {"index": i, "slug": g.slug, "name": g.name, "members": list(g.members)}
        for i, g in enumerate(plan.groups)
    ]
    return {"category": category, "classes": classes, "dropped": list(plan.dropped)}


def code(category: str, y: str, *maybe: str) -> str:
    """A code of ``category`` with ``y`` on one official class and ``m`` on others."""
    names = ATTRIBUTES[category]
    letters = ["n"] * len(names)
    letters[names.index(y)] = "y"
    for name in maybe:
        letters[names.index(name)] = "m"
    return "".join(letters)


def sleeve_targets(y: str, *maybe: str) -> np.ndarray:
    """The target row of one sleeve image under the user's default regrouping."""
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    index = class_groups(labels)[ATTRIBUTES[SLEEVE].index(y)]
    images = pd.DataFrame({"image": ["t/x.jpg"], "image_name": ["x.jpg"], "label_index": [index]})
    codes = pd.Series({"x.jpg": code(SLEEVE, y, *maybe)})
    targets, coded = soft_targets(labels, images, codes, W, Path("decoded.csv"))
    assert coded == (1 if maybe else 0)
    return targets[0]


def test_sleeve_classes_after_the_default_regrouping() -> None:
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    assert [c["name"] for c in labels["classes"]] == [
        "Sleeveless",
        "Short Sleeves",
        "Elbow Sleeves",
        "Long Sleeves",
    ]
    assert class_groups(labels).tolist() == [-1, 0, 1, 1, 2, 2, 3, 3, 3]


@pytest.mark.parametrize(
    ("maybe", "expected"),
    [
        ((), [0, 1, 0, 0]),
        (("Cup Sleeves",), [0, 1, 0, 0]),  # merged into the y class's group: nothing added
        (("Invisible",), [0, 1, 0, 0]),  # dropped: ignored
        (("Elbow Sleeves",), [0, 1 / (1 + W), W / (1 + W), 0]),
        (("Elbow Sleeves", "3/4 Sleeves"), [0, 1 / (1 + W), W / (1 + W), 0]),  # one group: once
        (("Cup Sleeves", "Elbow Sleeves"), [0, 1 / (1 + W), W / (1 + W), 0]),
        (("Sleeveless", "Wrist Length"), [W / (1 + 2 * W), 1 / (1 + 2 * W), 0, W / (1 + 2 * W)]),
    ],
    ids=[
        "none",
        "merged into y",
        "dropped",
        "elbow",
        "two members of one group",
        "merged into y and elbow",
        "two groups",
    ],
)
def test_target_of_a_short_sleeves_image_after_regrouping(maybe: tuple, expected: list) -> None:
    targets = sleeve_targets("Short Sleeves", *maybe)
    np.testing.assert_allclose(targets, expected, rtol=1e-6)
    assert targets.dtype == np.float32 and targets.sum() == pytest.approx(1)


def test_the_y_class_stays_the_largest_at_the_highest_weight() -> None:
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    images = pd.DataFrame({"image": ["x"], "image_name": ["x"], "label_index": [1]})
    codes = pd.Series({"x": code(SLEEVE, "Short Sleeves", "Elbow Sleeves", "Long Sleeves")})
    targets, _ = soft_targets(labels, images, codes, 0.999, Path("d.csv"))
    assert targets[0].argmax() == 1


def test_the_settings_carry_both_keys_into_the_backup_signature() -> None:
    data = TrainSettings(maybe_labels="soft", maybe_weight=0.5).to_dict()
    assert data["maybe_labels"] == "soft" and data["maybe_weight"] == 0.5
    assert TrainSettings().maybe_labels == "ignore" and TrainSettings().maybe_weight == 0.25


def write_decoded(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A decoded.csv with all its columns: rows of (attribute, image_name, code)."""
    frame = pd.DataFrame(rows, columns=["attribute", "image_name", "code"])
    frame["image"] = "results/extracted/a/Images/" + frame["attribute"] + "/" + frame["image_name"]
    frame["label_index"] = [c.index("y") for c in frame["code"]]
    frame["label"] = [
        ATTRIBUTES[a][c.index("y")] for a, c in zip(frame["attribute"], frame["code"], strict=True)
    ]
    frame["maybe"] = ""
    frame["archives"] = "a"
    frame["source_rows"] = 1
    frame[DECODED_COLUMNS].to_csv(path, index=False)
    return path


def sleeve_images(*names_and_classes: tuple[str, int]) -> pd.DataFrame:
    rows = [(f"tree/c/{name}", name, index) for name, index in names_and_classes]
    return pd.DataFrame(rows, columns=["image", "image_name", "label_index"])


def test_codes_are_matched_by_image_name_within_the_category(tmp_path: Path) -> None:
    decoded = write_decoded(
        tmp_path / "decoded.csv",
        [
            (COLLAR, "a.jpg", code(COLLAR, "Rib Collar")),
            (SLEEVE, "a.jpg", code(SLEEVE, "Short Sleeves", "Elbow Sleeves")),
            (SLEEVE, "b.jpg", code(SLEEVE, "Long Sleeves")),
        ],
    )
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    lines: list[str] = []
    targets, coded = load_soft_targets(
        decoded, labels, sleeve_images(("b.jpg", 3), ("a.jpg", 1)), W, lines.append
    )
    np.testing.assert_allclose(targets, [[0, 0, 0, 1], [0, 0.8, 0.2, 0]], rtol=1e-6)
    assert coded == 1
    assert lines == [
        "soft targets (maybe_weight 0.25): 1 of 2 training images coded m, "
        "1 with a maybe class after regrouping"
    ]


CUP = code(SLEEVE, "Cup Sleeves")
BAD_DECODED = {
    "image without a row": (
        [(SLEEVE, "a.jpg", code(SLEEVE, "Short Sleeves")), (COLLAR, "b.jpg", "nnnny")],
        "decoded.csv: no row for tree/c/b.jpg (image_name 'b.jpg', sleeve_length_labels)",
    ),
    "code of the wrong length": (
        [(SLEEVE, "a.jpg", code(SLEEVE, "Short Sleeves")), (SLEEVE, "b.jpg", "nnnnnnny")],
        "decoded.csv: the code is not 9 letters for tree/c/b.jpg (image_name 'b.jpg'",
    ),
    "y on another class than the tree's": (
        [(SLEEVE, "a.jpg", code(SLEEVE, "Short Sleeves")), (SLEEVE, "b.jpg", CUP)],
        "decoded.csv: the code's y is another class for tree/c/b.jpg",
    ),
    "an image listed twice": (
        [(SLEEVE, "a.jpg", code(SLEEVE, "Short Sleeves"))] * 2,
        "decoded.csv: image 'a.jpg' of sleeve_length_labels has several rows",
    ),
}


@pytest.mark.parametrize(("rows", "expected"), BAD_DECODED.values(), ids=list(BAD_DECODED))
def test_bad_decoded_rows_are_refused_by_name(tmp_path: Path, rows: list, expected: str) -> None:
    decoded = write_decoded(tmp_path / "decoded.csv", rows)
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    images = sleeve_images(("a.jpg", 1), ("b.jpg", 3))
    with pytest.raises(ValueError) as error:
        load_soft_targets(decoded, labels, images, W, print)
    assert str(decoded.parent) in str(error.value) and expected in str(error.value)


def test_a_decoded_file_without_the_code_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "decoded.csv"
    path.write_text("attribute,image_name,label\nsleeve_length_labels,a.jpg,Cup Sleeves\n")
    with pytest.raises(ValueError, match=r"decoded.csv: .*code.*needed: attribute"):
        read_codes(path, SLEEVE)


def test_soft_without_decoded_labels_is_refused() -> None:
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    with pytest.raises(ValueError, match="maybe_labels: soft needs the decoded labels"):
        load_soft_targets(None, labels, sleeve_images(("a.jpg", 1)), W, print)


def test_labels_json_that_places_an_official_class_nowhere_is_refused() -> None:
    labels = regrouped_labels(SLEEVE, CONFIG_REGROUP[SLEEVE])
    labels["dropped"] = []
    with pytest.raises(ValueError, match="official class 'Invisible' is in no class's members"):
        class_groups(labels)


def checked_config(train: dict) -> dict:
    """config.yaml with a tiny configuration and these train keys over it, validated."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in tiny_config(train=train).items():
        merged = isinstance(value, dict) and isinstance(config.get(key), dict)
        config[key] = {**config[key], **value} if merged else value
    return validate_config(copy.deepcopy(config))


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({"maybe_labels": "sometimes"}, "train.maybe_labels = 'sometimes': "),
        ({"maybe_weight": 0}, "train.maybe_weight = 0: "),
        ({"maybe_weight": 1}, "train.maybe_weight = 1: "),
        ({"maybe_weight": "high"}, "train.maybe_weight = 'high': "),
    ],
)
def test_bad_maybe_keys_are_refused(train: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        checked_config(train)
    assert str(error.value).startswith(expected), error.value


def test_maybe_keys_default_to_ignore() -> None:
    train = checked_config({})["train"]
    assert train["maybe_labels"] == "ignore" and train["maybe_weight"] == 0.25
    assert checked_config({"maybe_labels": "soft", "maybe_weight": 0.5})["train"]["maybe_weight"]


def train_jobs(output: str) -> dict[str, str]:
    """The input line of each planned training job of a dry run, by experiment."""
    inputs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        rule = re.match(r"rule train:\n", block)
        if rule:
            name = re.search(r"experiment=([\w.-]+)", block)
            inputs[name.group(1) if name else "default"] = re.search(
                r"^    input: (.*)$", block, flags=re.MULTILINE
            ).group(1)
    return inputs


def test_only_a_soft_training_job_depends_on_decoded_csv(tmp_path: Path) -> None:
    config = tiny_config(
        categories=[COLLAR],
        train={"cache_features": True},
        experiments={"soft": {"maybe_labels": "soft"}, "weight": {"maybe_weight": 0.5}},
    )
    result = run_snakemake(tmp_path, config, extra=("--dry-run",))
    assert result.returncode == 0, result.stderr[-3000:]
    inputs = train_jobs(result.stdout)
    assert sorted(inputs) == ["default", "soft", "weight"], result.stdout[-3000:]
    assert "results/labels/decoded.csv" in inputs["soft"]
    assert "decoded.csv" not in inputs["default"] and "decoded.csv" not in inputs["weight"]
    # Soft targets do not change the features: one cache for the three.
    caches = {re.search(r"results/features/\S+?(?=,|$)", line).group(0) for line in inputs.values()}
    assert len(caches) == 1, inputs


# --- training runs (TensorFlow) ---------------------------------------------------------------

COLLAR_LABELS = {  # the shape tree's classes as official collar classes; Invisible dropped
    "circle": ["Shirt Collar"],
    "square": ["Peter Pan", "Puritan Collar"],
    "triangle": ["Rib Collar"],
}
# Per class, the m codes given to its images in turn (the neighbouring official classes).
NEIGHBOURS = {
    "circle": [("Peter Pan",), (), ("Invisible",), ()],
    "square": [("Rib Collar",), ("Puritan Collar",), ("Shirt Collar", "Rib Collar"), ()],
    "triangle": [("Puritan Collar",), (), (), ()],
}


def soft_tree(root: Path) -> tuple[Path, Path, dict[str, bool]]:
    """A shape tree relabelled as regrouped collar classes and its decoded.csv, with m codes
    on neighbouring classes; and for each image whether its target gets a maybe class."""
    tree = make_tree(root / "tree", per_class=8, size=24, odd_files=False)
    labels = json.loads((tree / "labels.json").read_text())
    for entry in labels["classes"]:
        entry["members"] = COLLAR_LABELS[entry["slug"]]
        entry["name"] = COLLAR_LABELS[entry["slug"]][0]
    labels["dropped"] = ["Invisible"]
    (tree / "labels.json").write_text(json.dumps(labels))
    rows, soft = [], {}
    for slug, members in COLLAR_LABELS.items():
        for i, image in enumerate(sorted((tree / slug).iterdir())):
            maybe = NEIGHBOURS[slug][i % 4]
            rows.append((COLLAR, image.name, code(COLLAR, members[0], *maybe)))
            soft[image.name] = any(m not in members and m != "Invisible" for m in maybe)
    return tree, write_decoded(root / "decoded.csv", rows), soft


@pytest.fixture(scope="module")
def soft_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, bool]]:
    limit_threads()
    return soft_tree(tmp_path_factory.mktemp("soft"))


def small(**overrides: object) -> TrainSettings:
    base = dict(
        backbone="SmallCNN",
        weights=None,
        image_size=16,
        batch_size=8,
        epochs=2,
        patience=5,
        learning_rate=1e-2,
        seed=3,
        maybe_labels="soft",
    )
    return TrainSettings(**{**base, **overrides})


def feature_cache(tree: Path, folder: Path, settings: TrainSettings) -> Path | None:
    """Rule features' cache of ``settings`` in ``folder``, if its training job uses one."""
    from fashionai.training.features import extract_features  # TensorFlow: slow tests only

    if not uses_feature_cache(settings.to_dict()):
        return None
    split = split_files(tree, settings)["split"]
    extract_features(tree, folder, settings, split=split, log=lambda line: None)
    return folder


def train(
    tree: Path, out: Path, settings: TrainSettings, decoded: Path | None, features: Path | None
) -> tuple:
    """A training job as the workflow runs it: on rule features' cache ``features`` if any."""
    from fashionai.training.run import train_category  # TensorFlow: slow tests only

    lines: list[str] = []
    summary = train_category(
        tree,
        out,
        settings,
        **split_files(tree, settings),
        log=lines.append,
        decoded=decoded,
        features=features,
    )
    return summary, pd.read_csv(out / "history.csv"), lines


RUNS = {
    "feature cache": {"cache_features": True, "augmentations": ("flip",)},
    "images": {"cache_features": False},
    "fine-tuning": {"cache_features": True, "fine_tune": True, "head_epochs": 1, "epochs": 3},
}  # fine-tuning: of "pretrained" weights (a saved random backbone), head phase first


@pytest.mark.slow
@pytest.mark.parametrize("overrides", RUNS.values(), ids=list(RUNS))
def test_a_soft_run_trains_on_the_soft_targets_and_records_them(
    soft_data: tuple, tmp_path: Path, overrides: dict
) -> None:
    import keras

    from fashionai.pixels import load_images

    tree, decoded, soft = soft_data
    if overrides.get("fine_tune"):
        overrides = {**overrides, "weights": pretrained_weights(tmp_path / "w.weights.h5")}
    # Soft targets change no feature: the soft and the ignoring run share one cache, as the
    # workflow's jobs do (test_only_a_soft_training_job_depends_on_decoded_csv).
    features = feature_cache(tree, tmp_path / "features", small(**overrides))
    summary, history, lines = train(tree, tmp_path / "soft", small(**overrides), decoded, features)
    split = pd.read_csv(tmp_path / "soft" / "split.csv")
    trained = split.loc[split["subset"] == "train", "image_name"]
    assert summary["settings"]["maybe_labels"] == "soft"
    coded = pd.read_csv(decoded).set_index("image_name").loc[trained, "code"].str.contains("m")
    assert summary["soft_targets"] == {
        "maybe_weight": 0.25,
        "train_images": len(trained),
        "coded_maybe": int(coded.sum()),
        "with_maybe_class": sum(soft[name] for name in trained),
    }
    assert 0 < summary["soft_targets"]["with_maybe_class"] < summary["soft_targets"]["coded_maybe"]
    assert any(line.startswith("soft targets (maybe_weight 0.25)") for line in lines)
    # Validation stays on the y class: the saved model (the best epoch's) gives the recorded
    # validation accuracy and loss on the validation images' y classes.
    validation = split[split["subset"] == "validation"]
    probabilities = keras.models.load_model(tmp_path / "soft" / "model.keras").predict(
        load_images(validation["image"].tolist(), 16), verbose=0
    )
    y = validation["label_index"].to_numpy()
    best = history.loc[summary["best_epoch"]]
    assert (probabilities.argmax(axis=1) == y).mean() == pytest.approx(best["val_accuracy"])
    loss = -np.log(probabilities[np.arange(len(y)), y]).mean()
    assert loss == pytest.approx(best["val_loss"], abs=1e-4)

    ignore, ignore_history, _ = train(
        tree, tmp_path / "ignore", small(**overrides, maybe_labels="ignore"), None, features
    )
    assert ignore["soft_targets"] is None
    assert not np.allclose(history["loss"], ignore_history["loss"])  # trained on other targets
    if overrides.get("fine_tune"):
        assert summary["fine_tune_start_epoch"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("cached", [False, True], ids=["decoded", "image cache"])
def test_image_batches_carry_each_image_s_own_target_row(tmp_path: Path, cached: bool) -> None:
    from PIL import Image

    from fashionai.training.dataset import make_dataset

    paths = []
    for i in range(10):  # image i is grey level 20 * i
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (12, 12), (20 * i,) * 3).save(paths[-1])
    targets = np.stack([np.arange(10) / 10, 1 - np.arange(10) / 10], axis=1)
    cache = tmp_path / "cache" if cached else None
    if cache:
        cache.mkdir()
    data = make_dataset(paths, targets, 8, 4, training=True, seed=2, cache=cache and cache / "t")
    images, rows = zip(*data.as_numpy_iterator(), strict=True)
    images, rows = np.concatenate(images), np.concatenate(rows)
    assert rows.dtype == np.float32 and rows.shape == (10, 2)
    index = np.rint(rows[:, 0] * 10).astype(int)
    assert sorted(index) == list(range(10)) and index.tolist() != list(range(10))  # shuffled
    np.testing.assert_allclose(images.mean(axis=(1, 2, 3)), 20 * index, atol=0.5)
    np.testing.assert_allclose(rows, targets[index].astype(np.float32))


@pytest.mark.slow
def test_feature_batches_carry_each_image_s_own_target_row(
    soft_data: tuple, tmp_path: Path
) -> None:
    from fashionai.training.features import FeatureCaches, extract_features

    tree = soft_data[0]
    cache = extract_features(
        tree,
        tmp_path / "features",
        small(),
        split=split_files(tree, small())["split"],
        log=lambda line: None,
    )
    n = cache.manifest["images"]["train"]
    features = np.load(tmp_path / "features" / "train_features.npy")[0].astype(np.float32)
    targets = np.stack([np.arange(n) / n, 1 - np.arange(n) / n], axis=1).astype(np.float32)
    for max_bytes in (2**30, 0):  # in memory, from the memory map
        batches = list(FeatureCaches([cache]).dataset("train", 5, 1, None, max_bytes, targets))
        x = np.concatenate([b[0] for b in batches])
        rows = np.concatenate([b[1] for b in batches])
        index = np.rint(rows[:, 0] * n).astype(int)
        assert sorted(index) == list(range(n))
        np.testing.assert_array_equal(x, features[index])
        np.testing.assert_array_equal(rows, targets[index])


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_a_backup_made_from_other_codes_is_not_resumed(
    soft_data: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fashionai.training.run as run_module
    from fashionai.training.callbacks import EpochBackup

    class Killed(EpochBackup):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            raise Interrupted

    tree, decoded, _ = soft_data
    other = tmp_path / "decoded.csv"  # the same labels without their m codes
    codes = pd.read_csv(decoded)
    codes.assign(code=codes["code"].str.replace("m", "n")).to_csv(other, index=False)
    settings, out = small(epochs=3, cache_features=False), tmp_path / "out"
    runs: list[list[str]] = []
    for codes_file, killed in ((decoded, True), (other, True), (other, False)):
        monkeypatch.setattr(run_module, "EpochBackup", Killed if killed else EpochBackup)
        runs.append([])
        try:
            summary = run_module.train_category(
                tree,
                out,
                settings,
                **split_files(tree, settings),
                log=runs[-1].append,
                decoded=codes_file,
            )
        except Interrupted:
            assert killed
    discarded = [line for line in runs[1] if line.startswith("discarding the backup")]
    assert len(discarded) == 1 and "targets: " in discarded[0], runs[1]
    assert any(line.startswith("resuming from") for line in runs[2]), runs[2]
    assert summary["attempts"] == 2 and summary["soft_targets"]["coded_maybe"] == 0
