"""Heads on plain tensors: shapes, masking, internals, the attn <-> sla-1 reduction, spec parsing."""
import pytest
import torch

from harness.heads import (AttentionPool, HeadOptionError, UnknownHeadError, available_heads, build_head,
                           masked_softmax, parse_head_spec)

D = 16
ALL_HEADS = ["cls", "mean", "attn", "san-2", "sla-2", "sla-3:kernel=3", "san-2:kernel=3,query_update=residual",
             "sla-2:carry=latent,readout=z,phi=tanh", "sla-2:query=learned", "attn:query=cls", "mhap"]


def batch(b=3, n=7, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(b, n, D, generator=g).requires_grad_(requires_grad)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2, 3:] = False
    return states, mask, states[:, 0]


@pytest.mark.parametrize("spec", ALL_HEADS)
def test_shapes_and_gradients(spec):
    torch.manual_seed(0)
    head = build_head(spec, D)
    states, mask, first = batch(requires_grad=True)
    out = head(states, mask, first)
    assert out.pooled.shape == (3, head.out_dim)
    assert out.attentions is None and out.latents is None  # internals only on request
    out.pooled.square().sum().backward()
    assert states.grad is not None and torch.isfinite(states.grad).all()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{spec}: no gradient reaches {name}"


@pytest.mark.parametrize("spec", [h for h in ALL_HEADS if h != "cls"])  # cls reads only `first`, given as is
def test_padding_values_and_extra_padding_change_nothing(spec):
    torch.manual_seed(0)
    head = build_head(spec, D).eval()
    states, mask, first = batch()
    reference = head(states, mask, first).pooled
    garbage = torch.where(mask.unsqueeze(-1), states, torch.full_like(states, 1e3))  # padding holds garbage
    longer = torch.cat([garbage, torch.randn(3, 4, D)], 1)  # and four more padding positions
    longer_mask = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], 1)
    torch.testing.assert_close(head(longer, longer_mask, first).pooled, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec,layers", [("attn", 1), ("san-3", 3), ("sla-4", 4), ("mhap", 1)])
def test_internals_on_request_padding_gets_exactly_zero(spec, layers):
    head = build_head(spec, D)
    states, mask, first = batch()
    out = head(states, mask, first, return_internals=True)
    assert len(out.attentions) == layers
    for a in out.attentions:
        assert a.shape == (3, 7)
        assert torch.all(a[~mask] == 0)  # exactly zero, not small
        torch.testing.assert_close(a.sum(-1), torch.ones(3))
    if spec.startswith(("san", "sla")):
        d = head.config.d
        assert [s.shape for s in out.latents] == [(3, 7, d)] * layers


def test_sla_with_k1_tanh_readout_z_equals_attn():
    torch.manual_seed(0)
    attn = build_head("attn:d=8", D)
    sla = build_head("sla-1:d=8,phi=tanh,readout=z", D)
    sla.load_state_dict(attn.state_dict())  # the very same parameters, by name
    states, mask, first = batch()
    assert torch.equal(sla(states, mask, first).pooled, attn(states, mask, first).pooled)
    assert sla.out_dim == attn.out_dim == D


def test_sla_readout_and_carry_widths():
    assert build_head("sla-2:d=8", D).out_dim == D + 8
    sla = build_head("sla-3:d=8", D)
    assert sla.stack.proj_v.proj.weight.shape == (3 * 8, D)  # P_t^V of the three layers, fused
    assert [c.proj.in_features for c in sla.stack.proj_c] == [8 + 1] * 2  # P_t^c over [s ; a], t = 2, 3
    assert build_head("sla-3:d=8,carry=latent", D).stack.proj_c[1].proj.in_features == 8
    assert build_head("san-3:d=8", D).stack.proj_c is None  # SAN carries nothing


def test_sla_carries_state_and_san_does_not():
    """Perturbing layer 1's projection changes layer 2's latent map through the carry in SLA only
    (in SAN it can change layer 2 only through the query)."""
    torch.manual_seed(0)
    states, mask, first = batch()
    for spec, coupled in (("sla-2:d=8", True), ("san-2:d=8", False)):
        head = build_head(spec, D)
        with torch.no_grad():
            head.stack.proj_v.proj.bias[:8].add_(1.0)  # layer 1's block of the fused projection
            head.stack.score[0].weight.zero_()  # uniform attention in layer 1, so z_1 is the same mean
        after1 = head(states, mask, first, return_internals=True).latents[1]
        with torch.no_grad():
            head.stack.proj_v.proj.bias[:8].add_(1.0)
        after2 = head(states, mask, first, return_internals=True).latents[1]
        assert (not torch.allclose(after1, after2)) == coupled


def test_kernel3_is_a_real_convolution_over_sequence_and_grid():
    torch.manual_seed(0)
    seq = build_head("attn:kernel=3,d=8,query=learned", D)  # a fixed query isolates the convolution
    states, mask, first = torch.randn(1, 9, D), torch.ones(1, 9, dtype=torch.bool), None
    base = seq(states, mask, first, return_internals=True).latents[0]
    nudged = states.clone()
    nudged[0, 4] += 1.0
    diff = (seq(nudged, mask, first, return_internals=True).latents[0] - base).abs().sum(-1)[0]
    assert diff[3:6].gt(0).all() and diff[:3].eq(0).all() and diff[6:].eq(0).all()  # only neighbours move

    grid = build_head("sla-2:kernel=3,d=8,query=learned", D, spatial_dims=2)
    assert isinstance(grid.stack.proj_v.proj, torch.nn.Conv2d)
    states = torch.randn(1, 16, D)
    full = torch.ones(1, 16, dtype=torch.bool)
    base = grid(states, full, None, (4, 4), return_internals=True).latents[0]
    nudged = states.clone()
    nudged[0, 5] += 1.0  # row 1, col 1
    diff = (grid(nudged, full, None, (4, 4), return_internals=True).latents[0] - base).abs().sum(-1)[0].view(4, 4)
    assert diff[:3, :3].gt(0).all() and diff[3].eq(0).all() and diff[:, 3].eq(0).all()
    with pytest.raises(ValueError, match="grid"):
        grid(states, full, None, None)


def test_fused_projection_equals_separate_layers():
    """The fused V projection is K separate maps: layer t's block alone gives layer t's s_t."""
    torch.manual_seed(0)
    head = build_head("san-3:d=8", D)
    states, mask, first = batch()
    out = head(states, mask, first, return_internals=True)
    weight, bias = head.stack.proj_v.proj.weight, head.stack.proj_v.proj.bias
    query = (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)  # q1 = mean; q_{t+1} = z_t
    for t in range(3):
        block = slice(8 * t, 8 * (t + 1))
        s = torch.tanh(states @ weight[block].T + bias[block] + (query @ head.stack.proj_q[t].weight.T).unsqueeze(1))
        torch.testing.assert_close(s, out.latents[t])
        query = torch.einsum("bn,bnd->bd", out.attentions[t], states)


def test_autocast_bf16_runs_and_stays_close():
    torch.manual_seed(0)
    head = build_head("sla-3:d=8", D)
    states, mask, first = batch()
    reference = head(states, mask, first).pooled
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = head(states, mask, first).pooled
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, rtol=1e-2, atol=1e-2)


def test_masked_softmax_rows():
    scores = torch.tensor([[1.0, 2.0, 3.0], [5.0, -1.0, 0.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = masked_softmax(scores, mask)
    torch.testing.assert_close(out[0], torch.tensor([1 / (1 + torch.e), torch.e / (1 + torch.e), 0.0]))
    assert torch.equal(out[1], torch.zeros(3))  # no real position: zeros, not NaN


def test_query_sources():
    states, mask, _ = batch()
    with pytest.raises(ValueError, match="query=mean"):
        build_head("sla-2:query=cls", D)(states, mask, None)
    head = build_head("attn:query=learned", D)
    assert head.query.learned.shape == (D,)
    assert isinstance(build_head("attn", D), AttentionPool)
    # query=cls reads the first token and nothing else does; query=mean ignores it
    states, mask, first = batch()
    for spec, reads_first in (("attn:query=cls", True), ("sla-2:query=cls", True), ("attn", False), ("sla-2", False)):
        torch.manual_seed(0)
        head = build_head(spec, D).eval()
        moved = head(states, mask, first + 1.0).pooled
        assert (not torch.allclose(head(states, mask, first).pooled, moved)) == reads_first, spec
    # a learned query: the same output for any first token, and its own parameter moves the output
    head = build_head("attn:query=learned", D)
    before = head(states, mask, first).pooled
    assert torch.equal(before, head(states, mask, first + 1.0).pooled)
    with torch.no_grad():
        head.query.learned.add_(1.0)
    assert not torch.allclose(before, head(states, mask, first).pooled)


def test_query_update_residual_adds_the_previous_query():
    """q_{t+1} = z_t (replace) or q_t + z_t (residual): same weights, different second layer."""
    states, mask, first = batch()
    torch.manual_seed(0)
    replace = build_head("san-2:d=8", D).eval()
    residual = build_head("san-2:d=8,query_update=residual", D).eval()
    residual.load_state_dict(replace.state_dict())
    a = replace(states, mask, first, return_internals=True)
    b = residual(states, mask, first, return_internals=True)
    torch.testing.assert_close(a.attentions[0], b.attentions[0])  # layer 1 sees the same q_1
    assert not torch.allclose(a.attentions[1], b.attentions[1])  # layer 2 does not


def test_spec_parsing_labels_and_defaults():
    spec = parse_head_spec("sla-4:d=64,phi=tanh")
    assert spec.name == "sla" and spec.options["depth"] == 4 and spec.options["d"] == 64
    assert spec.options["carry"] == "latent+attn" and spec.options["readout"] == "z+latent"
    assert spec.label == "sla-4:d=64,phi=tanh"
    assert parse_head_spec("SLA-3").label == "sla-3"
    assert parse_head_spec("sla-3", d=32).label == "sla-3:d=32"
    assert parse_head_spec(spec).options == spec.options
    assert parse_head_spec("native").is_native
    assert "sla-K" in available_heads() and "mhap" in available_heads()


@pytest.mark.parametrize("bad,error,words", [
    ("slaa-3", UnknownHeadError, ["unknown head", "sla-K", "mhap"]),
    ("sla", HeadOptionError, ["needs a depth", "sla-2"]),
    ("mean-2", HeadOptionError, ["takes no depth"]),
    ("sla-2:depht=3", HeadOptionError, ["no option 'depht'", "phi", "carry"]),
    ("sla-2:phi=cube", HeadOptionError, ["phi", "relu", "tanh"]),
    ("sla-2:d=big", HeadOptionError, ["d=", "int"]),
    ("sla-2:kernel=2", HeadOptionError, ["odd"]),
    ("sla-0", HeadOptionError, ["depth"]),
    ("sla-2:phi", HeadOptionError, ["option=value"]),
    ("native:d=3", HeadOptionError, ["native"]),
])
def test_bad_specs_name_the_fix(bad, error, words):
    with pytest.raises(error) as info:
        parse_head_spec(bad)
    for word in words:
        assert word in str(info.value)


def test_mhap_heads_must_divide_width():
    with pytest.raises(HeadOptionError, match="heads=4"):
        build_head("mhap:heads=3", 20)
