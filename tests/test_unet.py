"""The DDPM UNet and the architecture summary: shapes, validation, attention placement,
conditioning (class and multi-hot, with their null labels), gradients, learning, autocast,
channels_last, and the summary table. Tiny models only: the whole file runs in seconds on CPU."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tuigen.models.classifier import SmallCNN
from tuigen.models.summary import format_summary, summarize
from tuigen.models.unet import SelfAttention, UNet


def tiny(image_size=16, in_channels=1, **kw) -> UNet:
    kw = {"channels": 8, "dim_mults": (1, 2), "num_res_blocks": 1, "attn_resolutions": (8,), **kw}
    torch.manual_seed(0)
    return UNet(image_size, in_channels, **kw)


def wake(model: UNet) -> UNet:
    """Undo the zero-init of the last conv, so outputs depend on the input and conditioning."""
    torch.manual_seed(1)
    with torch.no_grad():
        nn.init.normal_(model.conv_out.weight, std=0.1)
        nn.init.normal_(model.conv_out.bias, std=0.1)
    return model


def inputs(n=2, c=1, size=16):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, c, size, size, generator=g), torch.randint(0, 1000, (n,), generator=g)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- shapes and validation -----------------------------------------------------------------
@pytest.mark.parametrize("size,c,dim_mults", [(8, 1, (1, 2)), (8, 3, (1, 2, 4, 8)), (16, 1, (1, 2, 4)),
                                              (16, 3, (1, 1)), (32, 1, (1, 2, 2, 2)), (32, 3, (1, 2))])
def test_output_shape_equals_input_shape(size, c, dim_mults):
    model = wake(tiny(size, c, dim_mults=dim_mults, attn_resolutions=(size // 2,)))
    x, t = inputs(2, c, size)
    out = model(x, t)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_out_channels_and_odd_widths():
    # 12 and 4 channels do not divide by 8 groups: GroupNorm falls back to gcd instead of failing.
    model = tiny(16, 3, channels=12, out_channels=6, groups=8)
    x, t = inputs(2, 3, 16)
    assert model(x, t).shape == (2, 6, 16, 16)
    assert {m.num_groups for m in model.modules() if isinstance(m, nn.GroupNorm)} <= {4, 8}
    assert tiny(16, 1, channels=4)(*inputs(2, 1, 16)).shape == (2, 1, 16, 16)


def test_zero_initialised_output():
    model = tiny()
    assert torch.count_nonzero(model(*inputs())) == 0


def test_bad_image_size_names_the_size_and_divisor():
    with pytest.raises(ValueError, match=r"image_size 28 does not divide by 2\^3 = 8") as err:
        UNet(28, 1, channels=8, dim_mults=(1, 2, 4, 8))
    assert "multiple of 8" in str(err.value) and "dim_mults" in str(err.value)


@pytest.mark.parametrize("kw,words", [({"channels": 0}, "channels"), ({"dim_mults": ()}, "dim_mults"),
                                      ({"dim_mults": (1, 0)}, "dim_mults"), ({"num_res_blocks": 0}, "num_res_blocks"),
                                      ({"dropout": 1.0}, "dropout"), ({"groups": 0}, "groups"),
                                      ({"num_classes": 3, "cond_dim": 4}, "not both"),
                                      ({"attn_resolutions": (-16,)}, "attn_resolutions")])
def test_bad_arguments_raise(kw, words):
    with pytest.raises(ValueError, match=words):
        UNet(16, 1, **{"channels": 8, "dim_mults": (1, 2), **kw})


def test_input_side_must_divide():
    with pytest.raises(ValueError, match="does not divide by 4"):
        tiny(16, dim_mults=(1, 2, 4))(torch.randn(1, 1, 18, 18), torch.zeros(1))


# -- attention placement -------------------------------------------------------------------
def attention_sides(model: UNet, size: int) -> list[int]:
    sides = []
    hooks = [m.register_forward_hook(lambda mod, args, out: sides.append(args[0].shape[-1]))
             for m in model.modules() if isinstance(m, SelfAttention)]
    model(*inputs(1, 1, size))
    for h in hooks:
        h.remove()
    return sorted(sides)


def test_attention_only_at_requested_resolutions():
    # 32 -> 16 -> 8: level 1 (16x16) has 2 blocks down and 3 up; the middle block (8x8) one more.
    model = UNet(32, 1, channels=8, dim_mults=(1, 2, 4), num_res_blocks=2, attn_resolutions=(16,))
    assert sum(isinstance(m, SelfAttention) for m in model.modules()) == 6
    assert attention_sides(model, 32) == [8] + [16] * 5
    model = UNet(32, 1, channels=8, dim_mults=(1, 2, 4), num_res_blocks=2, attn_resolutions=(32, 8))
    assert attention_sides(model, 32) == [8] * 6 + [32] * 5


def test_no_attention_when_attn_resolutions_empty():
    model = UNet(32, 1, channels=8, dim_mults=(1, 2, 4), attn_resolutions=())
    assert not any(isinstance(m, SelfAttention) for m in model.modules())
    assert model(*inputs(1, 1, 32)).shape == (1, 1, 32, 32)


# -- conditioning --------------------------------------------------------------------------
def test_class_conditioning_and_null_label():
    model = wake(tiny(num_classes=3)).eval()
    x, t = inputs(2)
    null = model.null_cond(2, "cpu")
    assert null.dtype == torch.long and null.tolist() == [3, 3]
    out0 = model(x, t, torch.tensor([0, 0]))
    out1 = model(x, t, torch.tensor([1, 1]))
    out_null = model(x, t, null)
    assert not torch.allclose(out0, out1)
    assert not torch.allclose(out0, out_null)
    assert torch.equal(model(x, t, None), out_null)


def test_multi_hot_conditioning_and_zero_row():
    model = wake(tiny(cond_dim=5)).eval()
    x, t = inputs(2)
    null = model.null_cond(2, "cpu")
    assert null.shape == (2, 5) and not null.any()
    a = model(x, t, torch.tensor([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.float))
    b = model(x, t, torch.tensor([[1, 0, 0, 1, 0], [1, 0, 0, 1, 0]], dtype=torch.float))
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, model(x, t, null))
    assert torch.equal(model(x, t, None), model(x, t, null))
    # Bool or integer rows mean the same as float ones.
    assert torch.allclose(model(x, t, torch.tensor([[1, 0, 0, 0, 0]] * 2)), a)


def test_unconditional_model_rejects_labels_and_bad_shapes_raise():
    assert tiny().null_cond(4, "cpu") is None
    x, t = inputs(2)
    with pytest.raises(ValueError, match="unconditional"):
        tiny()(x, t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        tiny(num_classes=3)(x, t, torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match=r"shape \(2, 5\)"):
        tiny(cond_dim=5)(x, t, torch.zeros(2, 4))


def test_timestep_forms_agree():
    model = wake(tiny()).eval()
    x, _ = inputs(2)
    long_t = model(x, torch.tensor([7, 7]))
    assert torch.allclose(long_t, model(x, torch.tensor([7.0, 7.0])))
    assert torch.allclose(long_t, model(x, torch.tensor(7)))
    assert not torch.allclose(long_t, model(x, torch.tensor([500, 500])))
    assert "time_embed.freqs" not in model.state_dict()  # derived, not learned


# -- learning ------------------------------------------------------------------------------
def test_gradients_reach_every_parameter():
    model = tiny(num_classes=3, dropout=0.1)
    x, t = inputs(2)
    y = torch.tensor([0, 3])
    # Zero-init: at first only the last conv gets a gradient; everything else gets exactly zero.
    model(x, t, y).square().mean().backward()
    assert model.conv_out.weight.grad.abs().sum() == 0  # output 0 -> d(out^2)/d(out) = 0
    model.zero_grad(set_to_none=True)
    loss = (model(x, t, y) - torch.randn_like(x)).square().mean()
    loss.backward()
    assert model.conv_out.weight.grad.abs().sum() > 0
    upstream = [n for n, p in model.named_parameters() if not n.startswith("conv_out") and p.grad.abs().sum() > 0]
    assert upstream == []
    # Once the output layer is non-zero, every parameter gets a real gradient.
    wake(model).zero_grad(set_to_none=True)
    (model(x, t, y) - torch.randn_like(x)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    dead = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert missing == [] and dead == []


def test_overfits_one_tiny_batch():
    model = tiny(16, 1, channels=16, num_classes=2)
    g = torch.Generator().manual_seed(3)
    x_t, eps = torch.randn(4, 1, 16, 16, generator=g), torch.randn(4, 1, 16, 16, generator=g)
    t, y = torch.tensor([10, 200, 500, 900]), torch.tensor([0, 1, 0, 2])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(50):
        loss = (model(x_t, t, y) - eps).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(eps.square().mean().item(), rel=1e-4)  # zero-init: predicts 0
    assert losses[-1] < 0.1 * losses[0]


# -- precision and memory format -----------------------------------------------------------
def test_autocast_bfloat16():
    model = wake(tiny(num_classes=3))
    x, t = inputs(2)
    ref = model(x, t, torch.tensor([0, 1]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, t, torch.tensor([0, 1]))
    assert out.shape == x.shape and out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05
    out.float().square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_channels_last_matches_contiguous():
    model = wake(tiny(16, 3, attn_resolutions=(16, 8))).eval()
    x, t = inputs(2, 3, 16)
    ref = model(x, t)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.to(memory_format=torch.channels_last), t)
    assert torch.allclose(out, ref, atol=1e-5)


# -- summary -------------------------------------------------------------------------------
def test_summary_of_the_unet():
    model = tiny(16, 1, num_classes=3).train()
    x, t = inputs(2)
    rows = summarize(model, x, t, torch.tensor([0, 3]))
    assert all({"name", "type", "output_shape", "params"} <= row.keys() for row in rows)
    assert rows[0]["name"] == "" and rows[0]["output_shape"] == tuple(x.shape)
    assert rows[-1]["name"] == "conv_out" and rows[-1]["output_shape"] == tuple(x.shape)
    top = [r for r in rows if r["name"] and "." not in r["name"]]
    assert sum(r["params"] for r in top) == n_params(model) == rows[0]["params"]
    assert max(r["name"].count(".") for r in rows) == 1  # depth 2 by default
    by_name = {r["name"]: r for r in rows}
    assert by_name["down.0"]["output_shape"] == (2, 8, 8, 8) and by_name["down"]["output_shape"] is None
    assert by_name["time_embed"]["output_shape"] == (2, 32)
    assert all(m.training for m in model.modules())  # mode restored

    text = format_summary(rows, n_params(model))
    assert f"{n_params(model):,}" in text and "," in f"{n_params(model):,}"
    assert "Trainable params" in text and "  down" in text and "    0" in text
    lines = text.splitlines()
    assert len({len(line) for line in [lines[0]] + lines[2:len(rows) + 2]}) == 1  # fixed width


def test_summary_of_any_module_and_repeated_calls():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.frozen = nn.Linear(4, 3)
            self.frozen.requires_grad_(False)

        def forward(self, x):
            return self.frozen(self.lin(self.lin(x)[:1])), x  # a tuple: the first tensor counts

    rows = summarize(Twice(), torch.randn(5, 4))
    by_name = {r["name"]: r for r in rows}
    assert by_name["lin"]["output_shape"] == (5, 4)  # first call, not the second (1, 4)
    assert by_name[""]["output_shape"] == (1, 3)
    text = format_summary(rows)
    assert "Total params: 35" in text and "Trainable params: 20" in text and "Non-trainable params: 15" in text

    cnn = SmallCNN(1, 10, 16).train()
    before = cnn.features[0][1].running_mean.clone()
    rows = summarize(cnn, torch.randn(3, 1, 16, 16), depth=1)
    assert [r["name"] for r in rows] == ["", "features", "head"] and rows[0]["output_shape"] == (3, 10)
    assert torch.equal(cnn.features[0][1].running_mean, before) and cnn.training
    assert f"{n_params(cnn):,}" in format_summary(rows)
