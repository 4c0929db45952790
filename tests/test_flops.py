"""harness.flops.forward_flops: the one FLOP count behind runs.csv's flops_per_sample and the speed benchmark,
checked against counts done by hand."""
import pytest
import torch
import torch.nn.functional as F

from harness.flops import forward_flops


class LinearThenAttention(torch.nn.Module):
    """Per example: a (L, 8) @ (8, 16) projection, then attention of 2 heads of width 8 over L tokens."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 16)

    def forward(self, x, labels=None):
        h = self.proj(x)  # (b, L, 16)
        b, length, _ = h.shape
        q = h.view(b, length, 2, 8).transpose(1, 2)  # (b, heads, L, 8)
        return F.scaled_dot_product_attention(q, q, q)


def test_matmuls_and_attention_counted_per_example():
    model = LinearThenAttention()
    length = 5
    x = torch.randn(3, length, 8)
    linear = 2 * length * 8 * 16  # 2 m k n
    attention = 2 * 2 * (2 * length * length * 8)  # 2 heads x (q @ k^T and a @ v), each 2 L L d
    # attention counts on CPU too (its fused CPU kernel has no FLOP formula: it would count 0)
    assert forward_flops(model, {"x": x, "labels": torch.zeros(3)}) == linear + attention
    assert forward_flops(model, {"x": x}, batch=2) == linear + attention  # per example, whatever the batch
    assert model.training  # left in train mode, as fit expects


def test_only_labels_is_refused():
    with pytest.raises(ValueError, match="model inputs"):
        forward_flops(LinearThenAttention(), {"labels": torch.zeros(2)})


def test_the_runner_counts_its_first_evaluation_rows_and_never_fails_a_run():
    from harness.runner import eval_flops

    class Rows:  # what runner.eval_flops reads of data.TextRows: len() and collate(indices)
        def __len__(self):
            return 20

        def collate(self, indices):
            assert indices == list(range(8))  # the first 8 rows
            return {"x": torch.randn(len(indices), 5, 8), "labels": torch.zeros(len(indices))}

    assert eval_flops(LinearThenAttention(), Rows()) == 2 * 5 * 8 * 16 + 2 * 2 * (2 * 5 * 5 * 8)

    class Broken(LinearThenAttention):
        def forward(self, x, labels=None):
            raise RuntimeError("a family's quirk")

    assert eval_flops(Broken(), Rows()) != eval_flops(Broken(), Rows())  # NaN: the run goes on
