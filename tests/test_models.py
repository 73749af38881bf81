"""Tests of kdlib.models: builders, parameter / FLOP counts by hand, safe save / load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdlib import models
from kdlib.models import CheckpointError, cnn, count_params, flops, mlp, predict, rnn


@pytest.fixture
def images():
    return torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _linear_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# --------------------------------- builders and counts
def test_cnn_default_has_225034_parameters():
    # Hand count of the default teacher on 28×28×1 inputs (unpadded 3×3 convolutions):
    #   conv 1→32:  32·(1·3·3) + 32                 =     320   28 → 26 → pool → 13
    #   conv 32→64: 64·(32·3·3) + 64                =  18,496   13 → 11 → pool → 5
    #   fc 64·5·5=1600 → 128: 1600·128 + 128        = 204,928
    #   fc 128 → 10:  128·10 + 10                   =   1,290
    #   total                                       = 225,034
    assert 320 + 18_496 + 204_928 + 1_290 == 225_034
    model = cnn()
    assert count_params(model) == 225_034
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_cnn_small_configuration_by_hand():
    model = cnn(channels=(8,), hidden=16, n_classes=3, in_channels=2, image_size=12)
    side = (12 - 2) // 2  # 5
    expected = (8 * 2 * 9 + 8) + (8 * side * side * 16 + 16) + (16 * 3 + 3)
    assert count_params(model) == expected == 3419
    assert model(torch.zeros(4, 2, 12, 12)).shape == (4, 3)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Conv2d, nn.ReLU, models.FastMaxPool2d, nn.Flatten, nn.Linear, nn.ReLU,
                     nn.Dropout, nn.Linear]
    assert isinstance(model[2], nn.MaxPool2d) and "FastMaxPool2d(kernel_size=2" in repr(model)


@pytest.mark.parametrize("shape", [(3, 4, 26, 26), (2, 5, 11, 11), (4, 7, 9), (1, 1, 2, 3)])
def test_fast_max_pool_equals_torch_pooling_bit_for_bit(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen).relu()  # many exact ties (zeros)
    x[..., 0, 0] = x[..., 0, 1]                       # ties between positive values too
    if x.numel() > 20:
        x.view(-1)[7] = float("nan")
    pool = models.FastMaxPool2d(2)
    with torch.no_grad():
        fast = pool(x)
    expected = nn.functional.max_pool2d(x, 2)
    assert fast.shape == expected.shape
    # exact on any CPU: a maximum selects one of its inputs, it rounds nothing
    torch.testing.assert_close(fast, expected, rtol=0, atol=0, equal_nan=True)


def test_fast_max_pool_keeps_torch_gradients():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 8, 8, generator=gen).relu()
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(2, 3, 4, 4, generator=gen)
    models.FastMaxPool2d(2)(a).backward(g)
    nn.functional.max_pool2d(b, 2).backward(g)
    assert torch.equal(a.grad, b.grad)


def test_pools_other_than_2x2_fall_back_to_torch():
    x = torch.randn(1, 2, 9, 9)
    fast = models.FastMaxPool2d
    for pool in (fast(3), fast(2, stride=1), fast(2, padding=1), fast(2, ceil_mode=True)):
        ref = nn.MaxPool2d(pool.kernel_size, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)
        with torch.no_grad():
            assert torch.equal(pool(x), ref(x))


@pytest.mark.parametrize("build", [lambda: cnn(), lambda: mlp([784, 64, 10]), lambda: rnn()])
def test_predict_does_not_depend_on_its_chunk_size(build):
    # Chunks of another shape may take other GEMM kernels, which round differently on some
    # CPUs (BLAS promises no bit-equality across shapes): equal to float32 rounding, not bits.
    torch.manual_seed(0)
    model = build()
    x = torch.rand(600, 1, 28, 28)
    ref = predict(model, x, batch_size=600)
    for bs in (1, 8, 77, 128):
        torch.testing.assert_close(predict(model, x, batch_size=bs), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sizes", [[784, 64, 10], [64, 10], [2, 16, 16, 2], [5, 7, 3, 1, 4]])
def test_mlp_parameter_count_and_structure(sizes):
    model = mlp(sizes, dropout=0.1)
    assert count_params(model) == _linear_params(sizes)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(zip(sizes[:-1], sizes[1:]))
    assert isinstance(model[0], nn.Flatten) and isinstance(model[-1], nn.Linear)
    n_hidden = len(sizes) - 2
    assert sum(isinstance(m, nn.ReLU) for m in model) == n_hidden
    assert sum(isinstance(m, nn.Dropout) for m in model) == n_hidden
    assert model.kd_arch == {"kind": "mlp", "kwargs": {"sizes": sizes, "dropout": 0.1}}


def test_mlp_without_dropout_has_no_dropout_layers():
    assert not any(isinstance(m, nn.Dropout) for m in mlp([10, 5, 2]))


def test_count_params_trainable_only():
    model = mlp([4, 3, 2])
    model[1].weight.requires_grad_(False)
    assert count_params(model) == _linear_params([4, 3, 2])
    assert count_params(model, trainable_only=True) == _linear_params([4, 3, 2]) - 12


def test_rnn_shapes_and_parameters():
    model = rnn(row_size=8, hidden=5, n_classes=3)
    assert model(torch.zeros(6, 1, 8, 8)).shape == (6, 3)
    # GRU: 3 gates, each W_ih (h×i) + W_hh (h×h) + two biases; head h·c + c.
    assert count_params(model) == 3 * (5 * 8 + 5 * 5 + 2 * 5) + 5 * 3 + 3


# --------------------------------- flops
def test_flops_of_mlp_by_hand():
    assert flops(mlp([784, 64, 10]), (1, 28, 28)) == 2 * (784 * 64 + 64 * 10)


def test_flops_of_conv_layers_by_hand():
    conv = nn.Sequential(nn.Conv2d(3, 5, 3))
    # 5 output maps of 8×8, each output value a 3·3·3 multiply-accumulate.
    assert flops(conv, (3, 10, 10)) == 2 * (5 * 8 * 8) * (3 * 3 * 3)
    grouped = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2))
    assert flops(grouped, (4, 5, 5)) == 2 * (6 * 5 * 5) * (2 * 3 * 3)
    # The default teacher: conv1 32·26·26·9, conv2 64·11·11·32·9, fc 1600·128 + 128·10.
    macs = 32 * 26 * 26 * 9 + 64 * 11 * 11 * 32 * 9 + 1600 * 128 + 128 * 10
    assert flops(cnn(), (1, 28, 28)) == 2 * macs


def test_flops_of_rnn_and_side_effects():
    model = rnn()  # 28 steps of a GRU(28 → 64), then Linear(64 → 10)
    model.train()
    assert flops(model, (1, 28, 28)) == 2 * (28 * 3 * 64 * (28 + 64) + 64 * 10)
    assert model.training  # mode restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


# --------------------------------- predict
def test_predict_matches_eval_forward_in_chunks_and_restores_mode(images):
    torch.manual_seed(0)
    model = mlp([784, 32, 10], dropout=0.5)
    model.train()
    out = predict(model, images, batch_size=3)
    assert model.training
    model.eval()
    with torch.no_grad():
        assert torch.allclose(out, model(images), atol=1e-6)
    assert torch.equal(predict(model, images, batch_size=3), out)
    assert not model.training  # an eval model stays in eval
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, images, batch_size=0)


# --------------------------------- bad builder arguments
@pytest.mark.parametrize("build, error, word", [
    (lambda: mlp([784]), ValueError, "sizes"),
    (lambda: mlp([784, 0]), ValueError, r"sizes\[1\]"),
    (lambda: mlp([784.0, 10]), TypeError, r"sizes\[0\]"),
    (lambda: mlp([4, 2], dropout=1.0), ValueError, "dropout"),
    (lambda: mlp([4, 2], dropout=-0.1), ValueError, "dropout"),
    (lambda: cnn(channels=(8, 8), image_size=5), ValueError, "image_size"),
    (lambda: cnn(hidden=0), ValueError, "hidden"),
    (lambda: cnn(n_classes=1), ValueError, "n_classes"),
    (lambda: cnn(channels=(0,)), ValueError, r"channels\[0\]"),
    (lambda: rnn(hidden=0), ValueError, "hidden"),
    (lambda: rnn(row_size=2.5), TypeError, "row_size"),
    (lambda: models.build({"kind": "transformer"}), ValueError, "transformer"),
])
def test_bad_builder_arguments_name_the_argument(build, error, word):
    with pytest.raises(error, match=word):
        build()


# --------------------------------- save / load
@pytest.mark.parametrize("make, shape", [
    (lambda: mlp([784, 32, 10], dropout=0.2), (5, 1, 28, 28)),
    (lambda: cnn(channels=(4, 8), hidden=16), (5, 1, 28, 28)),
    (lambda: rnn(row_size=8, hidden=6), (5, 1, 8, 8)),
])
def test_save_load_round_trip(tmp_path, make, shape):
    torch.manual_seed(1)
    model = make()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    path = models.save(model, tmp_path / "deep" / "model.pt", epochs=3, lr=0.01,
                       note="unit test", acc=np.float64(0.875), sizes=[1, 2])
    assert path == tmp_path / "deep" / "model.pt" and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no .tmp left
    loaded = models.load(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.kd_arch == model.kd_arch
    assert loaded.kd_meta == {"epochs": 3, "lr": 0.01, "note": "unit test", "acc": 0.875,
                              "sizes": [1, 2]}
    assert type(loaded.kd_meta["acc"]) is float  # NumPy scalars are stored as plain floats
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert torch.equal(predict(model, x), predict(loaded, x))


def test_save_refuses_a_model_without_kd_arch(tmp_path):
    with pytest.raises(ValueError, match="kd_arch"):
        models.save(nn.Linear(3, 2), tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def test_save_refuses_metadata_that_load_could_not_read(tmp_path):
    with pytest.raises(TypeError, match="meta\\['opt'\\]"):
        models.save(mlp([3, 2]), tmp_path / "x.pt", opt=object())
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_no_partial_files(tmp_path, monkeypatch):
    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(models.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        models.save(mlp([3, 2]), tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    return models.save(mlp([6, 4, 3]), tmp_path / "m.pt", note="ok")


def test_tampered_weights_are_refused(saved):
    payload = torch.load(saved, weights_only=True)
    payload["state_dict"]["1.weight"][0, 0] += 0.5
    torch.save(payload, saved)
    with pytest.raises(CheckpointError, match="sha256"):
        models.load(saved)


def test_tampered_metadata_only_still_loads(saved):
    # The digest covers the weights; metadata edits are not an integrity failure.
    payload = torch.load(saved, weights_only=True)
    payload["meta"]["note"] = "edited"
    torch.save(payload, saved)
    assert models.load(saved).kd_meta == {"note": "edited"}


@pytest.mark.parametrize("keep", [0.5, 0.0, 0.9])
def test_truncated_checkpoint_is_a_checkpoint_error(saved, keep):
    blob = saved.read_bytes()
    saved.write_bytes(blob[:int(len(blob) * keep)])
    with pytest.raises(CheckpointError, match=str(saved.name)):
        models.load(saved)


def test_foreign_files_are_checkpoint_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    partial = tmp_path / "partial.pt"
    torch.save({"format": models.FORMAT, "arch": {"kind": "mlp"}}, partial)
    with pytest.raises(CheckpointError, match="readable"):
        models.load(text)
    with pytest.raises(CheckpointError, match="not a kdlib checkpoint"):
        models.load(plain)
    with pytest.raises(CheckpointError, match="incomplete"):
        models.load(partial)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        models.load(tmp_path / "absent.pt")


# --------------------------------- device
def test_default_device_follows_kdlib_device(monkeypatch):
    monkeypatch.delenv("KDLIB_DEVICE", raising=False)
    assert models.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("KDLIB_DEVICE", "cpu")
    assert models.default_device() == torch.device("cpu")
    monkeypatch.setenv("KDLIB_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="KDLIB_DEVICE='gpu0' is not a device"):
        models.default_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("KDLIB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA device"):
            models.default_device()


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"))]


@pytest.mark.parametrize("device", DEVICES)
def test_predict_runs_on_the_models_device_and_returns_on_the_inputs(device):
    torch.manual_seed(0)
    m = models.mlp([4, 8, 3]).to(device)
    x = torch.randn(7, 4)
    out = models.predict(m, x, batch_size=3)
    assert out.device == x.device and out.shape == (7, 3)
    assert torch.allclose(out, m.cpu()(x).detach(), atol=1e-5)


# --------------------------------- linear and soft-tree students, reading layers
def test_linear_student_is_softmax_regression(images):
    m = models.linear()
    assert count_params(m) == 784 * 10 + 10
    w, b = m[1].weight, m[1].bias
    expected = images.reshape(7, -1) @ w.T + b
    torch.testing.assert_close(m(images), expected)


def test_soft_tree_path_probs_by_hand():
    tree = models.soft_tree(depth=2, n_in=3, n_classes=2)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    p = torch.sigmoid(tree.inner(x))  # probability of going right at nodes 0, 1, 2
    expected = torch.stack([(1 - p[:, 0]) * (1 - p[:, 1]), (1 - p[:, 0]) * p[:, 1],
                            p[:, 0] * (1 - p[:, 2]), p[:, 0] * p[:, 2]], dim=1)
    torch.testing.assert_close(tree.path_probs(x), expected)
    torch.testing.assert_close(tree.path_probs(x).sum(1), torch.ones(5))
    mixture = expected @ torch.softmax(tree.leaves, dim=1)
    torch.testing.assert_close(tree(x).exp(), mixture)
    assert tree.predict_max_leaf(x).shape == (5,)


def test_soft_tree_routing_gradcheck():
    torch.manual_seed(0)
    tree = models.soft_tree(depth=3, n_in=4, n_classes=3, beta=2.0).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: tree.log_path_probs(inp), (x,))
    assert torch.autograd.gradcheck(lambda inp: tree(inp), (x,))


@pytest.mark.parametrize("build", [lambda: models.linear(n_in=20, n_classes=3),
                                   lambda: models.soft_tree(depth=3, n_in=20, n_classes=3)])
def test_new_students_save_and_load(tmp_path, build):
    m = build()
    x = torch.rand(4, 20)
    models.save(m, tmp_path / "s.pt")
    back = models.load(tmp_path / "s.pt")
    torch.testing.assert_close(back(x), m(x))


def test_soft_tree_rejects_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        models.soft_tree(depth=0)


def test_feature_tap_reads_named_layer_without_changing_forward(images):
    m = mlp([784, 16, 10])
    before = m(images)
    with models.FeatureTap(m, "2") as tap:
        out = m(images)
        hidden = tap.outputs["2"]
    torch.testing.assert_close(out, before)
    torch.testing.assert_close(hidden, torch.relu(m[1](images.reshape(7, -1))))
    assert hidden.requires_grad  # a loss on it trains the layers below
    assert not m[2]._forward_hooks  # removed on exit
    torch.testing.assert_close(models.read_layer(m, images, "2", batch_size=3), hidden.detach())
    m.train()
    feats, logits = models.read_layer(m, images, "2", batch_size=3, with_output=True)
    torch.testing.assert_close(feats, hidden.detach())
    torch.testing.assert_close(logits, before.detach())  # the model's output, from the same pass
    assert m.training and not feats.requires_grad and not logits.requires_grad


def test_feature_tap_unknown_layer_names_known_ones():
    with pytest.raises(ValueError, match="known layers"):
        models.FeatureTap(mlp([4, 3, 2]), "fc9")


def test_soft_tree_balance_penalty_against_numpy():
    torch.manual_seed(3)
    tree = models.soft_tree(depth=2, n_in=4, n_classes=3)
    x = torch.randn(9, 4)
    p = torch.sigmoid(tree.inner(x)).detach().numpy()  # right at nodes 0, 1, 2
    reach = {0: np.ones(9), 1: 1 - p[:, 0], 2: p[:, 0]}
    expected = 0.0
    for node, level in ((0, 0), (1, 1), (2, 1)):
        a = (reach[node] * p[:, node]).sum() / reach[node].sum()
        expected -= 2.0 ** -level * 0.5 * (np.log(a) + np.log(1 - a))
    assert float(tree.balance_penalty(x).detach()) == pytest.approx(expected, rel=1e-5)
    # minimal (log 2 per node, weighted by level) when every split is even
    flat = models.soft_tree(depth=2, n_in=4, n_classes=3)
    torch.nn.init.zeros_(flat.inner.weight)
    torch.nn.init.zeros_(flat.inner.bias)
    assert float(flat.balance_penalty(x).detach()) == pytest.approx(np.log(2) * (1 + 0.5 * 2), rel=1e-5)


def test_max_param_diff():
    torch.manual_seed(0)
    a = models.mlp([4, 3, 2])
    b = models.mlp([4, 3, 2])
    b.load_state_dict(a.state_dict())
    assert models.max_param_diff(a, b) == 0.0
    with torch.no_grad():
        next(b.parameters())[1, 2] += 0.25
    assert abs(models.max_param_diff(a, b) - 0.25) < 1e-6
    assert models.max_param_diff(torch.nn.ReLU(), torch.nn.ReLU()) == 0.0
