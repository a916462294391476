"""Training refuses bad numbers, stops a diverging run, and trusts only intact, checksummed checkpoints."""

import pickle
import struct
import zipfile

import pytest
import torch

from neuro.io import ConfigError
from neuro.training import checkpoint, config
from neuro.training.data import rate_coded_digits
from neuro.training.trainer import CHECKPOINT, MODEL, TrainingDiverged, fit, load_model

SMALL = {"seed": 0, "epochs": 2, "data": {"batch_size": 50},
         "model": {"layers": [{"type": "dense", "size": 16}], "tau_mem": 40e-3}, "optim": {"lr": 5e-3}}


@pytest.fixture(scope="module")
def tiny():
    data = rate_coded_digits(time_steps=3, test_size=100, seed=0)
    data.x_train, data.y_train = data.x_train[:100], data.y_train[:100]
    data.x_test, data.y_test = data.x_test[:40], data.y_test[:40]
    return data


@pytest.mark.parametrize("section, key, value", [
    ("model", "dt", 0), ("model", "dt", -1e-3), ("model", "dt", ".inf"), ("optim", "lr", float("inf")),
    ("optim", "lr", float("nan")), ("model", "surrogate_slope", float("nan")), ("model", "tau_mem", 0),
    ("model", "v_th", "1.0"), ("optim", "weight_decay", -1), ("model", "tau_syn", float("nan")),
    ("data", "batch_size", 2.5), ("model", "use_mpr", "yes"), ("data", "downsample", 0),
])
def test_bad_numbers_are_refused_naming_the_key(section, key, value):
    with pytest.raises(ConfigError, match=rf"{section}\.{key} must be"):
        config.resolve({section: {key: value}})


def test_seed_as_text_and_a_layer_too_large_for_memory_are_refused():
    with pytest.raises(ConfigError, match="seed must be an integer"):
        config.resolve({"seed": "abc"})
    cfg = config.resolve({"model": {"layers": [{"type": "recurrent", "size": 10**8}]}})
    with pytest.raises(ConfigError, match=r"model.layers\[0\].*GiB"):
        config.build_model(cfg["model"], (64,), 10)


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_the_checkpoint(tiny, tmp_path, monkeypatch):
    cfg = config.resolve(SMALL)
    fit(cfg, tiny, tmp_path, progress=False, stop_after=1)
    good = (tmp_path / CHECKPOINT).read_bytes()
    real_step = torch.optim.Adam.step

    def poisoned_step(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("nan"))
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", poisoned_step)
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2.*NaN.*last finished epoch"):
        fit(cfg, tiny, tmp_path, resume=True, progress=False)
    assert (tmp_path / CHECKPOINT).read_bytes() == good
    assert not (tmp_path / MODEL).exists()


def test_a_nan_loss_stops_the_first_epoch_and_saves_nothing(tiny, tmp_path, monkeypatch):
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(TrainingDiverged, match="epoch 1: the training loss of batch 1 is nan"):
        fit(config.resolve(SMALL), tiny, tmp_path, progress=False)
    assert not (tmp_path / CHECKPOINT).exists()


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    fit(config.resolve(SMALL), tiny, out, progress=False, stop_after=1)
    return out / CHECKPOINT


def _largest_record(path):
    """Offset and size of the largest stored record (a weight tensor) of a torch zip file."""
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _flip_weight_bit(src, dst):
    data = bytearray(src.read_bytes())
    start, size = _largest_record(src)
    data[start + size // 2] ^= 0x10
    dst.write_bytes(bytes(data))


def _truncate(src, dst):
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])


def _unsafe_pickle(src, dst):
    dst.write_bytes(pickle.dumps(type("Payload", (), {"__reduce__": lambda self: (print, ("ran",))})()))


def _no_checksum(src, dst):
    state = torch.load(src, weights_only=True)
    del state[checkpoint.DIGEST]
    torch.save(state, dst)


def _edited_weight(src, dst):
    state = torch.load(src, weights_only=True)
    next(iter(state["model"].values())).add_(1e-3)
    torch.save(state, dst)


@pytest.mark.parametrize("damage, message", [
    (_flip_weight_bit, "damaged"), (_truncate, "not a readable"), (_unsafe_pickle, "not a readable"),
    (_no_checksum, "no checksum"), (_edited_weight, "damaged"),
])
def test_damaged_checkpoints_are_refused_without_torch_advice(trained, tmp_path, tiny, damage, message, capsys):
    out = tmp_path / "run"
    out.mkdir()
    damage(trained, out / CHECKPOINT)
    with pytest.raises(checkpoint.CheckpointError, match=message) as info:
        fit(config.resolve(SMALL), tiny, out, resume=True, progress=False)
    assert "weights_only" not in str(info.value) and "ran" not in capsys.readouterr().out


def test_stale_temporaries_of_killed_writes_are_removed(trained, tmp_path, tiny):
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT).write_bytes(trained.read_bytes())
    stale = [out / ".checkpoint.pt.abcd1234.pt", out / ".metrics.json.x_y_z_12.json"]
    keep = out / ".checkpoint.pt.notes"
    for path in stale + [keep]:
        path.write_bytes(b"half")
    fit(config.resolve(SMALL), tiny, out, resume=True, progress=False)
    assert not any(p.exists() for p in stale) and keep.exists()
    model, cfg, _ = load_model(out / MODEL)
    assert cfg["epochs"] == 2 and (out / MODEL).stat().st_mode & 0o777 != 0o600


def test_a_model_file_of_an_older_version_loads_unverified_with_a_warning(tiny, tmp_path):
    """model.pt written before checksums (and before model.qat): loaded with a warning, its config completed."""
    fit(config.resolve({**SMALL, "epochs": 1}), tiny, tmp_path, progress=False)
    state = torch.load(tmp_path / MODEL, weights_only=True)
    del state[checkpoint.DIGEST]
    del state["config"]["model"]["qat"]
    torch.save(state, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="no checksum .* not verified"):
        model, cfg, _ = load_model(tmp_path / "old.pt")
    assert cfg["model"]["qat"] is False
    fresh, _, _ = load_model(tmp_path / MODEL)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    state["state_dict"] = "not weights"
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(checkpoint.CheckpointError, match="weights do not fit the model"), pytest.warns(UserWarning):
        load_model(tmp_path / "bad.pt")
