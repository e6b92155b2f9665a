"""Training: better than chance, deterministic, cached, and checkpoints validated on load."""

import json
import shutil

import pytest
import torch

from edgekit import train
from edgekit.cli import main
from edgekit.errors import EdgekitError
from edgekit.train import Recipe, load_checkpoint, train_model

torch.set_num_threads(2)

QUICK = Recipe(epochs=3, halve_every=3)
LIMIT = 1000


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """One real training run for the module, in its own cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEKIT_CACHE", str(tmp_path_factory.mktemp("original-cache")))
        return train_model("lenet", "mnist-subset", recipe=QUICK, seed=0, limit=LIMIT, progress=False)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def trained(original, cache):
    """The module's checkpoint, copied into this test's cache (tests may damage it)."""
    shutil.copytree(original.path.parent, cache / "checkpoints")
    return load_checkpoint(original.key)


def test_training_on_a_slice_beats_chance_and_writes_a_checkpoint(original):
    assert original.accuracy > 0.5  # chance is 0.1
    assert not original.cached and not original.model.training
    assert original.path.exists() and original.path.parent.name == "checkpoints"
    meta = json.loads(original.path.with_suffix(".json").read_text())
    assert meta["key"] == original.key and meta["model"] == "lenet" and meta["dataset"] == "mnist-subset"
    assert meta["recipe"]["epochs"] == 3 and meta["limit"] == LIMIT and meta["accuracy"] == original.accuracy


def test_same_seed_gives_identical_weights_and_another_seed_does_not(trained, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "other-cache"))
    again = train_model("lenet", "mnist-subset", recipe=QUICK, seed=0, limit=LIMIT, progress=False)
    assert not again.cached and again.key == trained.key
    assert torch.get_num_threads() == 2 and not torch.are_deterministic_algorithms_enabled()  # restored
    first, second = trained.model.state_dict(), again.model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = train_model("lenet", "mnist-subset", recipe=QUICK, seed=1, limit=LIMIT, progress=False)
    assert other.key != trained.key
    assert not torch.equal(other.model.state_dict()["conv1.weight"], first["conv1.weight"])


def test_second_call_is_a_cache_hit_without_training(trained, monkeypatch, capsys):
    monkeypatch.setattr(train, "_fit", lambda *args, **kwargs: pytest.fail("retrained a cached checkpoint"))
    again = train_model("lenet", "mnist-subset", recipe=QUICK, seed=0, limit=LIMIT, progress=True)
    assert again.cached and again.key == trained.key and again.accuracy == trained.accuracy
    assert torch.equal(again.model.state_dict()["fc3.weight"], trained.model.state_dict()["fc3.weight"])
    assert f"cached checkpoint {trained.key}" in capsys.readouterr().err


def test_load_checkpoint_by_key_and_by_path(trained):
    by_key, by_path = load_checkpoint(trained.key), load_checkpoint(trained.path)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(by_key.model(x), trained.model(x)) and torch.equal(by_path.model(x), trained.model(x))
    assert by_key.recipe == QUICK and by_key.limit == LIMIT


def test_truncated_checkpoint_is_reported_not_loaded(trained):
    trained.path.write_bytes(trained.path.read_bytes()[:100])
    with pytest.raises(EdgekitError, match=rf"checkpoint {trained.path}: sha256 does not match"):
        load_checkpoint(trained.key)


def test_unreadable_weights_file_is_an_edgekit_error(trained):
    from device_agents.fileio import sha256_file, write_json

    trained.path.write_bytes(b"not a torch file")
    sidecar = trained.path.with_suffix(".json")
    write_json(sidecar, dict(json.loads(sidecar.read_text()), sha256=sha256_file(trained.path)))
    with pytest.raises(EdgekitError, match=rf"checkpoint {trained.path} is unreadable"):
        load_checkpoint(trained.path)


def test_checkpoint_that_does_not_fit_its_model_is_an_edgekit_error(trained):
    sidecar = trained.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta["dataset_info"]["num_classes"] = 5
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(EdgekitError, match=r"does not fit lenet: fc3.weight is \(10, 84\), lenet has \(5, 84\)"):
        load_checkpoint(trained.key)


def test_missing_checkpoint_and_bad_arguments(cache):
    with pytest.raises(EdgekitError, match="does not exist"):
        load_checkpoint("0123456789abcdef")
    with pytest.raises(EdgekitError, match="unknown model 'vgg'"):
        train_model("vgg", "mnist-subset", progress=False)
    with pytest.raises(EdgekitError, match="unknown dataset 'svhn'"):
        train_model("lenet", "svhn", progress=False)
    with pytest.raises(EdgekitError, match="limit 0"):
        train_model("lenet", "mnist-subset", limit=0, progress=False)


def test_augment_flips_and_shifts_deterministically():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    first = train.augment(images, 2, torch.Generator().manual_seed(0))
    again = train.augment(images, 2, torch.Generator().manual_seed(0))
    assert first.shape == images.shape and torch.equal(first, again)
    assert not torch.equal(first, images)
    # Each output pixel is some input pixel of the same image and channel.
    for n in range(2):
        for c in range(3):
            assert set(first[n, c].flatten().tolist()) <= set(images[n, c].flatten().tolist())


def test_cli_train_prints_accuracy_key_and_path(cache, capsys):
    assert main(["train", "lenet", "--epochs", "1", "--limit", "300", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy: " in out and "checkpoint: " in out and str(cache / "checkpoints") in out
    assert main(["train", "lenet", "--epochs", "1", "--limit", "300", "--quiet"]) == 0
    assert "(cached)" in capsys.readouterr().out


def test_cli_train_rejects_bad_input_with_exit_2(cache, capsys):
    assert main(["train", "lenet", "--dataset", "svhn"]) == 2
    assert capsys.readouterr().err.startswith("edgekit: error: unknown dataset 'svhn'")
    assert main(["train", "lenet", "--epochs", "0"]) == 2


def test_cli_layers_prints_the_split_points(capsys):
    assert main(["layers", "lenet"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "ReLU2" in line]
    assert len(lines) == 1 and "16x8x8" in lines[0] and "4,096" in lines[0]
    assert "(1, 28, 28)" in out and "fc3" in out


def test_cli_layers_errors_exit_2(capsys):
    assert main(["layers", "vgg"]) == 2
    assert "unknown model 'vgg'" in capsys.readouterr().err
    assert main(["layers", "lenet", "--dataset", "svhn"]) == 2


def test_damaged_sidecar_is_an_edgekit_error(trained):
    sidecar = trained.path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    del meta["sha256"]
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(EdgekitError, match=rf"checkpoint sidecar {sidecar} is unreadable: it lacks sha256"):
        load_checkpoint(trained.key)
    sidecar.write_text("{")
    with pytest.raises(EdgekitError, match="is unreadable"):
        load_checkpoint(trained.key)
