"""The three attacks on LeNet / mnist-subset: quality in a few iterations, determinism, refusals."""

import numpy as np
import pytest
import torch

from cloud_side.attacks import AttackError, Knowledge, list_attacks, make_attack
from cloud_side.attacks.decoders import decoder_for
from cloud_side.attacks.queryfree import random_shift
from cloud_side.attacks.whitebox import total_variation
from cloud_side.metrics import score_images
from edgekit.data import load_dataset
from edgekit.models import create_model
from edgekit.split import split_model
from edgekit.train import train_model

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def data():
    return load_dataset("mnist-subset")


@pytest.fixture(scope="module")
def lenet():
    return train_model("lenet", "mnist-subset", seed=0, progress=False).model


@pytest.fixture(scope="module")
def targets(data):
    """The first held-out image of each of 8 classes."""
    index = [int(np.flatnonzero(data.y_test == label)[0]) for label in range(8)]
    return data.x_test[index], data.y_test[index]


def device_features(device_part, images):
    with torch.no_grad():
        return device_part(torch.from_numpy(images)).numpy()


@pytest.fixture(scope="module")
def conv1(lenet):
    return split_model(lenet, "conv1", input_shape=SHAPE)


def test_registry_names_the_three_attacks():
    assert list_attacks() == ["blackbox", "queryfree", "whitebox"]
    with pytest.raises(AttackError, match="unknown attack 'greybox'.*blackbox, queryfree, whitebox"):
        make_attack("greybox")


def test_whitebox_inverts_conv1_in_a_hundred_iterations(conv1, targets):
    attack = make_attack("whitebox", preset="mnist-conv1", iterations=100)
    attack.fit(Knowledge(device_part=conv1.device, input_shape=SHAPE))
    recon = attack.reconstruct(device_features(conv1.device, targets[0]))
    assert recon.dtype == np.float32 and recon.shape == targets[0].shape
    assert recon.min() >= 0.0 and recon.max() <= 1.0
    assert score_images(targets[0], recon)["psnr_db"].mean() > 20
    assert attack.wall_seconds > 0


def test_whitebox_batch_equals_one_image_at_a_time(lenet, targets):
    relu2 = split_model(lenet, "ReLU2", input_shape=SHAPE)
    features = device_features(relu2.device, targets[0][:3])
    attack = make_attack("whitebox", preset="mnist-ReLU2", iterations=15, init="gray")
    attack.fit(Knowledge(device_part=relu2.device, input_shape=SHAPE))
    batched = attack.reconstruct(features)
    alone = np.concatenate([attack.reconstruct(features[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_whitebox_is_deterministic_under_seed(conv1, targets):
    features = device_features(conv1.device, targets[0][:2])
    knowledge = Knowledge(device_part=conv1.device, input_shape=SHAPE)

    def run(seed):
        return make_attack("whitebox", iterations=5, init="noise", seed=seed).fit(knowledge).reconstruct(features)

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_blackbox_inverse_network_at_conv1(conv1, data, targets):
    def query(images):
        return device_features(conv1.device, images)

    attack = make_attack("blackbox", query_source="train", epochs=2, seed=0)
    attack.fit(Knowledge(query=query, aux_images=data.x_train[:2000], input_shape=SHAPE))
    recon = attack.reconstruct(query(targets[0]))
    assert score_images(targets[0], recon)["ssim"].mean() > 0.5
    again = make_attack("blackbox", query_source="train", epochs=2, seed=0)
    again.fit(Knowledge(query=query, aux_images=data.x_train[:2000], input_shape=SHAPE))
    np.testing.assert_array_equal(again.reconstruct(query(targets[0])), recon)


def test_blackbox_ensemble_averages_deterministic_decoders(conv1, data, targets):
    def query(images):
        return device_features(conv1.device, images)

    def reconstruct(decoders):
        attack = make_attack("blackbox", query_source="train", epochs=1, decoders=decoders, seed=0)
        attack.fit(Knowledge(query=query, aux_images=data.x_train[:500], input_shape=SHAPE))
        return attack.reconstruct(query(targets[0]))

    pair = reconstruct(2)
    np.testing.assert_array_equal(reconstruct(2), pair)
    assert not np.allclose(reconstruct(1), pair)
    with pytest.raises(AttackError, match="decoders must be at least 1"):
        make_attack("blackbox", decoders=0)


def test_blackbox_noise_queries_need_no_aux_data_and_are_sent_in_batches(conv1, targets):
    sizes = []

    def query(images):
        sizes.append(len(images))
        return device_features(conv1.device, images)

    attack = make_attack("blackbox", query_source="noise", noise_queries=300, query_batch=128, epochs=1)
    attack.fit(Knowledge(query=query, input_shape=SHAPE))
    assert sizes == [128, 128, 44]
    assert attack.reconstruct(query(targets[0])).shape == targets[0].shape


def test_queryfree_shadow_beats_a_gray_image(lenet, conv1, data, targets):
    def fresh_conv1():  # the device part's architecture, re-initialised
        return split_model(create_model("lenet", data.info), "conv1", input_shape=SHAPE).device

    attack = make_attack("queryfree", shadow_factory=fresh_conv1, shadow_epochs=1, iterations=100, seed=0)
    attack.fit(Knowledge(cloud_part=conv1.cloud, aux_images=data.x_train[:1000], aux_labels=data.y_train[:1000],
                         input_shape=SHAPE))
    recon = attack.reconstruct(device_features(conv1.device, targets[0]))
    attacked = score_images(targets[0], recon)
    gray = score_images(targets[0], np.full_like(targets[0], 0.5))
    assert attacked["psnr_db"].mean() > gray["psnr_db"].mean() + 3
    assert attacked["ssim"].mean() > gray["ssim"].mean() + 0.1


def test_random_shift_moves_each_image_by_whole_pixels():
    dots = torch.zeros(50, 1, 7, 7)
    dots[:, :, 3, 3] = 1.0
    shifted = random_shift(dots, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(random_shift(dots, 2, torch.Generator().manual_seed(0)), shifted)
    assert torch.equal(shifted.sum((1, 2, 3)), torch.ones(50))  # the dot moved, nothing else appeared
    positions = {tuple(spot[2:].tolist()) for spot in shifted.nonzero()}
    assert positions <= {(row, col) for row in range(1, 6) for col in range(1, 6)} and len(positions) > 5
    with pytest.raises(AttackError, match="shadow_shift must be at least 0"):
        make_attack("queryfree", shadow_factory=torch.nn.Identity, shadow_shift=-1)


@pytest.mark.parametrize("name, knowledge, missing", [
    ("whitebox", {}, "device_part"),
    ("blackbox", {"aux_images": np.zeros((2, 1, 28, 28), np.float32)}, "query"),
    ("blackbox", {"query": lambda images: images}, "aux_images"),
    ("queryfree", {"cloud_part": torch.nn.Identity()}, "aux_images, aux_labels"),
])
def test_missing_knowledge_is_refused_by_name(name, knowledge, missing):
    settings = {"shadow_factory": torch.nn.Identity} if name == "queryfree" else {}
    attack = make_attack(name, **settings)
    with pytest.raises(AttackError, match=f"{name} attack needs knowledge it was not given: {missing}"):
        attack.fit(Knowledge(input_shape=SHAPE, **knowledge))


def test_queryfree_needs_a_shadow_factory():
    with pytest.raises(AttackError, match="shadow_factory"):
        make_attack("queryfree")


def test_features_of_the_wrong_shape_are_refused(conv1):
    attack = make_attack("whitebox", iterations=1).fit(Knowledge(device_part=conv1.device, input_shape=SHAPE))
    with pytest.raises(AttackError, match=r"features of shape \(2, 16, 8, 8\).*expected \(N, 8, 24, 24\)"):
        attack.reconstruct(np.zeros((2, 16, 8, 8), np.float32))
    with pytest.raises(AttackError, match="call fit"):
        make_attack("whitebox").reconstruct(np.zeros((1, 8, 24, 24), np.float32))


def test_unknown_preset_and_setting_are_refused_with_the_accepted_ones():
    with pytest.raises(AttackError, match="unknown preset 'mnist-conv9'; presets: .*mnist-ReLU2"):
        make_attack("whitebox", preset="mnist-conv9")
    with pytest.raises(AttackError, match="unknown settings \\['iters'\\]; settings: .*iterations"):
        make_attack("whitebox", iters=5)
    with pytest.raises(AttackError, match="query sources: train, same-distribution, noise"):
        make_attack("blackbox", query_source="imagenet")
    with pytest.raises(AttackError, match="inits: gray, zeros, noise"):
        make_attack("whitebox", init="black")


def test_total_variation_forms():
    step = torch.zeros(1, 1, 3, 3)
    step[..., 2] = 1.0  # one vertical edge of height 1
    # squared (the code's form): mean of squared row differences (0) + mean over 3x2 column differences (3/6)
    assert total_variation(step, "squared").item() == pytest.approx(0.5)
    # beta = 1 (the paper's): sqrt(dx²+dy²) over the 2x2 top-left grid: edge at column 1 on 2 of 4 cells
    assert total_variation(step, 1.0).item() == pytest.approx(0.5, abs=1e-3)
    assert total_variation(2 * step, 1.0).item() == pytest.approx(1.0, abs=1e-3)
    assert total_variation(2 * step, "squared").item() == pytest.approx(2.0)


@pytest.mark.parametrize("feature_shape, image_shape", [
    ((8, 24, 24), (1, 28, 28)), ((16, 8, 8), (1, 28, 28)), ((16, 4, 4), (1, 28, 28)), ((120,), (1, 28, 28)),
    ((64, 32, 32), (3, 32, 32)), ((128, 16, 16), (3, 32, 32)), ((128, 8, 8), (3, 32, 32)), ((512,), (3, 32, 32)),
])
def test_decoders_map_features_back_to_image_shape(feature_shape, image_shape):
    assert decoder_for(feature_shape, image_shape)(torch.zeros(2, *feature_shape)).shape == (2, *image_shape)
