"""The optimizer base (symdisc.optim): a teleporting optimizer works wherever a torch.optim.Optimizer works."""

import copy

import pytest
import torch
from torch import nn

from symdisc import InputError, NumericalError
from symdisc.layout import ParamLayout
from symdisc.optim import GroupMove, ParamBinding, Schedule, SymmetryOptimizer
from symdisc.symmetry import linear_pair_gl
from symdisc.teleport import TeleportConfig, TeleportOptimizer


def make_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.1), nn.Linear(4, 2)).double()


EVERY_4 = Schedule.every(4)


def make_opt(net, inner=None, schedule=EVERY_4, objective="grad_norm", data_seed=1):
    """A teleporting SGD on a fixed data set of 64 samples; teleport batches of 8 drawn with the optimizer's
    generator, along GL(4)-diag (the positive rescalings LeakyReLU keeps) between the layers."""
    g = torch.Generator().manual_seed(data_seed)
    x, y = torch.randn(64, 3, generator=g, dtype=torch.float64), torch.randn(64, 2, generator=g, dtype=torch.float64)
    layout = ParamLayout.of_module(net)
    sym = linear_pair_gl(layout, "0.weight", "2.weight", "0.bias", algebra="diag")

    def batches(generator):
        idx = torch.randperm(64, generator=generator)[:8]
        return x[idx], y[idx]

    inner = inner or torch.optim.SGD(net.parameters(), lr=5e-2, momentum=0.9)
    opt = TeleportOptimizer(inner, sym, model=net, criterion=lambda o, t: (o - t).pow(2).mean(), batches=batches,
                            schedule=schedule, config=TeleportConfig(objective=objective, steps=3, lr=1e-2,
                                                                     max_step=0.1),
                            generator=torch.Generator().manual_seed(7))
    return opt, x, y


def train(net, opt, x, y, steps, scheduler=None, start=0):
    losses = []
    for t in range(start, start + steps):
        sl = slice((8 * t) % 64, (8 * t) % 64 + 8)
        opt.zero_grad(set_to_none=True)
        loss = (net(x[sl]) - y[sl]).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(1.0)  # a flat metric: the plateau rule must cut the lr
            else:
                scheduler.step()
    return losses


def test_is_a_torch_optimizer_sharing_the_inner_state():
    net = make_net()
    opt, x, y = make_opt(net)
    assert isinstance(opt, torch.optim.Optimizer) and isinstance(opt, SymmetryOptimizer)
    assert opt.param_groups is opt.optimizer.param_groups and opt.state is opt.optimizer.state
    train(net, opt, x, y, 2)
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in net.parameters())
    extra = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt.add_param_group({"params": [extra], "lr": 0.5})
    assert opt.optimizer.param_groups[-1]["params"] == [extra] and opt.param_groups is opt.optimizer.param_groups


@pytest.mark.parametrize("kind", ["step", "plateau", "onecycle"])
def test_lr_schedulers_drive_a_teleporting_optimizer(kind):
    net = make_net()
    opt, x, y = make_opt(net)
    scheduler = {"step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
                 "plateau": lambda: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5),
                 "onecycle": lambda: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=12)}[kind]()
    lrs = []
    for t in range(12):
        train(net, opt, x, y, 1, scheduler, start=t)
        lrs.append(opt.optimizer.param_groups[0]["lr"])  # the inner optimizer sees the scheduler's lr
    assert len(set(lrs)) > 1
    if kind == "step":
        assert lrs[-1] == pytest.approx(5e-2 * 0.5 ** 4)
    assert [e["step"] for e in opt.events] == [4, 8, 12]


def test_state_dict_resume_is_bitwise_with_teleports():
    """Saved after step 6 (one teleport done), loaded into a fresh optimizer on a fresh net: steps 7–16, including the
    teleports at 8, 12 and 16 and the batches they draw, repeat bitwise."""
    net = make_net()
    opt, x, y = make_opt(net)
    train(net, opt, x, y, 6)
    saved_net, saved_opt = copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict())
    assert saved_opt["symdisc"]["steps_done"] == 6 and len(saved_opt["symdisc"]["events"]) == 1
    reference = train(net, opt, x, y, 10, start=6)

    net2 = make_net(seed=99)  # other initial weights: everything must come from the checkpoint
    net2.load_state_dict(saved_net)
    opt2, _, _ = make_opt(net2, schedule=Schedule.every(4))
    opt2.generator.manual_seed(12345)  # another generator state: load_state_dict must restore it
    opt2.load_state_dict(saved_opt)
    resumed = train(net2, opt2, x, y, 10, start=6)
    assert resumed == reference
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters(), strict=True))
    strip = lambda events: [{k: v for k, v in e.items() if k != "seconds"} for e in events]
    assert strip(opt2.events) == strip(opt.events) and len(opt.events) == 4
    mom = lambda o: torch.cat([o.state[p]["momentum_buffer"].reshape(-1) for p in o.binding.tensors])
    assert torch.equal(mom(opt), mom(opt2))


def test_load_state_dict_of_a_plain_optimizer_is_refused():
    net = make_net()
    opt, _, _ = make_opt(net)
    with pytest.raises(InputError, match="not saved by a symmetry optimizer"):
        opt.load_state_dict(torch.optim.SGD(net.parameters(), lr=0.1).state_dict())


def test_wrapping_requires_a_torch_optimizer_and_matching_parameters():
    net = make_net()
    opt, _, _ = make_opt(net)
    with pytest.raises(InputError, match="torch.optim.Optimizer"):
        TeleportOptimizer(object(), opt.symmetry, model=net, criterion=lambda o, t: o)
    with pytest.raises(InputError, match="not another symmetry optimizer"):
        TeleportOptimizer(opt, opt.symmetry, model=net, criterion=lambda o, t: o)
    other = nn.Linear(3, 4).double()
    with pytest.raises(InputError, match="not in the optimizer's param_groups"):
        TeleportOptimizer(torch.optim.SGD(other.parameters(), lr=0.1), opt.symmetry, model=net,
                          criterion=lambda o, t: o)


def test_schedules():
    assert [t for t in range(12) if Schedule.at([0, 5]).due(t)] == [0, 5]
    assert [t for t in range(12) if Schedule.every(3).due(t)] == [3, 6, 9]
    assert [t for t in range(12) if Schedule.every(4, start=1, stop=9).due(t)] == [1, 5, 9]
    assert [t for t in range(12) if Schedule.of(lambda t: t % 5 == 0).due(t)] == [0, 5, 10]
    assert not any(Schedule.of(None).due(t) for t in range(5)) and Schedule.of([2]).due(2)
    with pytest.raises(InputError):
        Schedule.every(0)
    with pytest.raises(InputError):
        Schedule.at([-1])


def test_binding_module_list_and_flat():
    net = make_net()
    layout = ParamLayout.of_module(net)
    by_module = ParamBinding(layout, model=net)
    by_list = ParamBinding(layout, params=list(net.parameters()))
    theta = by_module.theta()
    assert torch.equal(theta, by_list.theta()) and theta.shape == (layout.num_params,)
    flat = torch.zeros(layout.num_params, dtype=torch.float64)
    ParamBinding(layout, params=flat).assign(theta)
    assert torch.equal(flat, theta)
    by_module.assign(theta * 2)
    assert torch.equal(by_list.theta(), theta * 2)
    with pytest.raises(InputError, match="does not match"):
        ParamBinding(layout, params=[torch.zeros(3)])
    with pytest.raises(InputError, match="does not have"):
        ParamBinding(ParamLayout.from_pairs([("w", (2,))]), model=net)


class LinearMove(GroupMove):
    """θ' = Aθ: J = A, so covectors transport by A^{-T}."""

    def __init__(self, A, theta):
        self.A, self.theta = A, A @ theta
        self.before = theta

    def maps(self):
        yield (lambda th: self.A @ th), self.before


def test_group_move_transports_covectors_and_applies_policies():
    g = torch.Generator().manual_seed(0)
    A = torch.eye(5, dtype=torch.float64) + 0.1 * torch.randn(5, 5, generator=g, dtype=torch.float64)
    move = LinearMove(A, torch.randn(5, generator=g, dtype=torch.float64))
    v = torch.randn(5, generator=g, dtype=torch.float64)
    expected = torch.linalg.solve(A.T, v)
    for method in ("iterative", "solve", "auto"):
        assert torch.allclose(move.transport_covector(v, method), expected, rtol=1e-10, atol=1e-12)
    buffers = {"momentum_buffer": v, "exp_avg_sq": v.abs()}
    assert torch.allclose(move.transport_state(buffers, "transform")["momentum_buffer"], expected)
    assert set(move.transport_state(buffers, "transform")) == {"momentum_buffer"}  # second moments kept
    assert move.transport_state(buffers, "keep") == {}
    assert torch.equal(move.transport_state(buffers, "reset")["momentum_buffer"], torch.zeros(5, dtype=torch.float64))
    with pytest.raises(InputError, match="state policy"):
        move.transport_state(buffers, "rotate")
    singular = LinearMove(torch.zeros(5, 5, dtype=torch.float64), move.before)
    with pytest.raises((NumericalError, torch.linalg.LinAlgError)):
        singular.transport_covector(v, "iterative")


def test_failed_state_transport_leaves_parameters_and_state_untouched():
    net = make_net()
    opt, x, y = make_opt(net, schedule=None)
    train(net, opt, x, y, 2)
    before = [p.detach().clone() for p in net.parameters()], opt.moment("momentum_buffer").clone()

    class BadMove(GroupMove):
        theta = torch.full_like(before[1], 3.0)

        def transport_covector(self, v, method="auto"):
            return torch.full_like(v, float("nan"))

    with pytest.raises(NumericalError, match="non-finite"):
        opt.apply_move(BadMove())
    assert all(torch.equal(a, b) for a, b in zip(before[0], net.parameters(), strict=True))
    assert torch.equal(before[1], opt.moment("momentum_buffer"))
