"""Under DDP (2 gloo ranks on CPU, through the train stage's build_trainer) the ranks step on
different local gradients and end with equal weights: the weights one process reaches stepping on
the two ranks' batches concatenated. The two-node and DVC tests compare DDP runs with each other,
which a DDP that did not average the gradients would pass."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, project_env
from ddp_probe import LR, MOMENTUM, STEPS

pytestmark = pytest.mark.slow


def _gradient(layer: torch.nn.Linear, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    layer.zero_grad()
    torch.nn.functional.mse_loss(layer(inputs), targets).backward()
    return torch.cat([p.grad.flatten() for p in layer.parameters()])


def _one_process(initial: dict, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """The weights one process reaches from ``initial`` stepping on each of ``batches``."""
    layer = torch.nn.Linear(3, 2)
    layer.load_state_dict({k.removeprefix("layer."): v for k, v in initial.items()})
    optimizer = torch.optim.SGD(layer.parameters(), lr=LR, momentum=MOMENTUM)
    for inputs, targets in batches:
        _gradient(layer, inputs, targets)
        optimizer.step()
    return {f"layer.{k}": v.detach() for k, v in layer.state_dict().items()}


@pytest.mark.timeout(300)
def test_two_ranks_with_different_gradients_end_equal_to_one_process_on_both_batches(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ddp_probe.py"), str(tmp_path)],
        cwd=ROOT, env=project_env(), capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert all(len(r["batches"]) == STEPS for r in ranks)
    initial = ranks[0]["initial"]
    assert all(torch.equal(ranks[1]["initial"][k], v) for k, v in initial.items())  # one seed, one start

    # the local gradients differ: on its own batch each rank would step elsewhere
    layer = torch.nn.Linear(3, 2)
    layer.load_state_dict({k.removeprefix("layer."): v for k, v in initial.items()})
    first = [_gradient(layer, *r["batches"][0]) for r in ranks]
    assert (first[0] - first[1]).abs().max() > 0.1

    final = [r["final"] for r in ranks]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0]), "the ranks' weights differ"
    together = [
        (torch.cat([ranks[0]["batches"][s][0], ranks[1]["batches"][s][0]]),
         torch.cat([ranks[0]["batches"][s][1], ranks[1]["batches"][s][1]]))
        for s in range(STEPS)
    ]  # fmt: skip
    expected = _one_process(initial, together)
    for name, tensor in expected.items():
        torch.testing.assert_close(final[0][name], tensor, rtol=1e-5, atol=1e-6)
    alone = _one_process(initial, ranks[0]["batches"])  # what rank 0 reaches without the other's gradient
    assert any((alone[k] - final[0][k]).abs().max() > 1e-3 for k in alone)
