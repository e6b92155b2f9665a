"""Experiment files: validation with the bad value's path, and expansion into configurations."""

from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.experiment.config import load_experiment
from edgekit.experiment.plan import configurations, device_batches, plan_runs
from experiment_support import TINY, write_experiment

DEMO = Path(__file__).resolve().parents[1] / "edgekit" / "experiments" / "demo.toml"
EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CONFIG", str(tmp_path / "config"))
    monkeypatch.delenv("EDGEKIT_DEVICES", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


BAD = [
    # (what is wrong, replace this, with this, expected in the message)
    ("unknown top-level key", 'warmup = 1', 'warmup = 1\ncolour = "red"', "tiny.toml: colour: unknown key; accepted:"),
    ("unknown attack key", 'iterations = 5', 'iterations = 5\nsteps = 3', "attacks[0].steps: unknown key; accepted: label, kind"),
    ("bad value type", 'iterations = 5', 'iterations = "many"', "attacks[0].iterations: 'many'"),
    ("bad value", 'images = 8', 'images = 0', "images: 0: input should be greater than 0"),
    ("unknown model", 'model = "lenet"', 'model = "alexnet"', "tiny.toml: model: 'alexnet' is not one of"),
    ("unknown dataset", 'dataset = "mnist-subset"', 'dataset = "imagenet"', "tiny.toml: dataset: unknown dataset 'imagenet'"),
    ("unknown split", '"ReLU2"]', '"ReLU9"]', "splits[1]: 'ReLU9' is not one of normalize, conv1"),
    ("unknown format", 'formats = ["onnx"]', 'formats = ["onnx", "coreml"]', "formats[1]: 'coreml' is not one of onnx, tflite"),
    ("unknown attack", 'kind = "whitebox"', 'kind = "oracle"', "attacks[0].kind: 'oracle' is not one of whitebox, blackbox, queryfree"),
    ("unknown device", 'devices = ["local"]', 'devices = ["local", "pi9"]', "devices[1]: 'pi9' is not one of local"),
    ("bad defence parameter", 'rate = 0.5', 'rate = 1.5', "defences[1].rate: 1.5: input should be less than 1"),
    ("missing defence parameter", 'rate = 0.5', '', "defences[1].rate: missing required key"),
    ("unknown defence", 'kind = "dropout"', 'kind = "blur"', "defences[1].kind: 'blur' is not one of none, gaussian, laplace, dropout"),
    ("bad defence place", 'at = "simulated"', 'at = "cloud"', "defences[1].at: 'cloud' is not one of device, simulated"),
    ("bad black-box query route", '[[defences]]', '[[attacks]]\nkind = "blackbox"\nvia = "cloud"\n\n[[defences]]',
     "tiny.toml: attacks[1].via: 'cloud' is not one of local, agent"),
    ("bad attack setting", 'kind = "whitebox"', 'kind = "whitebox"\npreset = "mnist-fc9"', "attacks[0]: whitebox: unknown preset 'mnist-fc9'"),
    ("more attacked than run", 'attacked_images = 3', 'attacked_images = 30', "attacked_images: 30 is more than images (8)"),
    ("not TOML", 'warmup = 1', 'warmup = = 1', "tiny.toml: not valid TOML"),
    ("shipped link with figures", '[[defences]]', '[[links]]\nname = "lte"\nrtt_ms = 20\n\n[[defences]]',
     "tiny.toml: links[0]: 'lte' is a shipped profile and takes no rtt_ms; give a link with figures of your own "
     "a name of its own"),
    ("own link without its figures", '[[defences]]', '[[links]]\nname = "farm"\nrtt_ms = 20\n\n[[defences]]',
     "tiny.toml: links[0]: 'farm' is not a shipped profile (ethernet, wifi, lte, 3g, nb-iot); a link of your own "
     "needs upload_mbps and rtt_ms (missing: upload_mbps)"),
    ("bad link rate", '[[defences]]', '[[links]]\nname = "farm"\nupload_mbps = 0\nrtt_ms = 20\n\n[[defences]]',
     "tiny.toml: links[0].upload_mbps: 0: input should be greater than 0"),
    ("bad link radio power", '[[defences]]',
     '[[links]]\nname = "farm"\nupload_mbps = 1\nrtt_ms = 20\nradio_w = "high"\n\n[[defences]]',
     "tiny.toml: links[0].radio_w: 'high': input should be a valid number"),
    ("unknown link key", '[[defences]]', '[[links]]\nname = "farm"\nupload_mbps = 1\nrtt_ms = 2\nloss = 0.1\n\n[[defences]]',
     "tiny.toml: links[0].loss: unknown key; accepted: name, upload_mbps, rtt_ms, radio_w, source"),
    ("link listed twice", 'warmup = 1', 'warmup = 1\nlinks = ["lte", "wifi", "lte"]',
     "tiny.toml: links[2]: duplicates 'lte'; give it a distinct name"),
    ("bad link name", 'warmup = 1', 'warmup = 1\nlinks = [{name = "My LTE", upload_mbps = 5, rtt_ms = 50}]',
     "tiny.toml: links[0].name: 'My LTE': accepted: lower-case letters, digits, '_', '.' and '-'"),
]


@pytest.mark.parametrize("what, old, new, expected", BAD, ids=[case[0] for case in BAD])
def test_bad_experiment_exits_2_naming_the_path(isolated, capsys, what, old, new, expected):
    assert old in TINY
    path = write_experiment(isolated, TINY.replace(old, new, 1))
    assert main(["run", str(path), "--output", str(isolated / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (isolated / "results").exists(), "nothing may be written for a refused experiment"


def test_missing_file_exits_2(isolated, capsys):
    assert main(["run", str(isolated / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_shipped_demo_and_examples_validate(isolated):
    from edgekit.experiment.checks import check_experiment

    for path in [DEMO, *EXAMPLES]:
        experiment = load_experiment(path)
        if experiment.devices == ["local"] and experiment.dataset == "mnist-subset":
            check_experiment(experiment, path.name)
    demo = load_experiment(DEMO)
    assert len(demo.splits) >= 3 and set(demo.formats) == {"onnx", "tflite"}
    assert set(demo.precisions) == {"fp32", "int8"}
    assert {a.kind for a in demo.attacks} == {"whitebox", "blackbox", "queryfree"}
    assert len(EXAMPLES) >= 4


def test_plan_shares_one_agent_run_between_undefended_and_simulated_defences(isolated):
    text = TINY.replace('formats = ["onnx"]', 'formats = ["onnx", "tflite"]') + \
        '\n[[defences]]\nkind = "gaussian"\nsigma = 0.5\nat = "device"\n'
    experiment = load_experiment(write_experiment(isolated, text))
    runs = plan_runs(experiment)
    keys = [c.key for c in configurations(runs)]
    # 2 splits x 2 formats x 1 precision x 3 defences; the simulated one rides on the undefended run
    assert len(keys) == len(set(keys)) == 12
    assert len(runs) == 8
    assert runs[0].split == runs[1].split == "conv1"  # split-major: attacks fitted once per split
    shared = [r for r in runs if len(r.serves) == 2]
    assert all({c.defence.applied for c in r.serves} == {"none", "simulated"} for r in shared)
    assert all(len(batch) == 1 for batch in device_batches(runs))


def test_fingerprint_ignores_output_but_not_settings(isolated):
    base = load_experiment(write_experiment(isolated))
    moved = load_experiment(write_experiment(isolated, 'output = "elsewhere"\n' + TINY, "moved.toml"))
    longer = load_experiment(write_experiment(isolated, TINY.replace("iterations = 5", "iterations = 6"), "l.toml"))
    assert base.fingerprint() == moved.fingerprint() != longer.fingerprint()


def test_boards_need_the_collector_address(isolated, capsys):
    inventory = isolated / "devices.toml"
    inventory.write_text('[devices.pi5]\nhost = "pi5.lan"\nuser = "pi"\n')
    path = write_experiment(isolated, TINY.replace('devices = ["local"]', 'devices = ["local", "pi5"]'))
    assert main(["run", str(path), "--devices", str(inventory), "--output", "results"]) == 2
    assert "tiny.toml: collector.address: required with device 'pi5'" in capsys.readouterr().err
    assert not (isolated / "results").exists()


@pytest.mark.parametrize("command", ["run", "demo", "report"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"edgekit {command}" in out


def test_query_free_shadow_does_not_start_from_the_targets_initial_weights(isolated):
    """The target is initialised under the experiment's seed; a "same" shadow drawn from that seed
    would begin as the target's own initial weights and leak them into the attack."""
    import torch

    from edgekit.experiment.checks import build_attack
    from edgekit.models import create_model, model_info
    from edgekit.split import split_model

    experiment = load_experiment(write_experiment(isolated, TINY.replace(
        'kind = "whitebox"', 'kind = "queryfree"\nshadow = "same"', 1)))
    info = model_info(experiment.model).shape_info()
    torch.manual_seed(experiment.seed)  # as edgekit.train initialises the target
    target_init = split_model(create_model(experiment.model, info), "conv1", info.shape)
    attack = build_attack(experiment.attacks[0], experiment, "attacks[0]", target_init, info.shape)
    shadow = attack.settings["shadow_factory"]()
    assert not torch.equal(shadow.conv1.weight, target_init.device.conv1.weight)


@pytest.mark.parametrize("kind, split, preset", [("whitebox", "ReLU2", "mnist-ReLU2"),
                                                 ("blackbox", "conv1", "mnist-conv1"),
                                                 ("queryfree", "pool1", "default")])
def test_each_attack_gets_the_preset_tuned_for_its_split(kind, split, preset):
    from edgekit.experiment.checks import preset_for

    assert preset_for(kind, "mnist-subset", split) == preset
