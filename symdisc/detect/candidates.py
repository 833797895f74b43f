"""Candidate symmetries from a dataflow: hidden spaces and the translations around them.

* **hidden spaces** (Table 1.1): coordinate classes produced together, never separated by a split or a
  batched contraction, reaching only parameters → GL_h (linear path), SO(h) (a class contracted with
  itself), positive rescalings (ReLU-type activations, norm affine weights, pooling);
* **bias shifts** (affine layers compose): a space with a linear path from a bias to consumers that all
  have biases: b ↦ b + v, b' ↦ b' − W'v (attention's value bias, a norm's β);
* **mean shifts**: coordinates read only by mean-subtracting normalisations (the residual stream of a
  pre-LN transformer): each producer may add c·1 along the normalised axis;
* **norm mean-zero directions**: a layer reading LN_{γ,β}(x) directly: W ↦ W + a (1/γ)ᵀ, b ↦ b − a⟨1/γ, β⟩;
* **free translations**: a bias whose every shift is removed downstream (a key bias under a softmax over
  keys, a bias before a batch-norm), and entries the outputs never depend on (unused parameters).

Each is a candidate only: :mod:`symdisc.detect.check` verifies it before it is reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from symdisc.detect.coords import Coordinates
from symdisc.detect.dataflow import Dataflow
from symdisc.layout import ParamLayout
from symdisc.symmetry.base import Symmetry
from symdisc.symmetry.hidden import Attachment, HiddenSpace, MatrixGroupSymmetry
from symdisc.symmetry.normshift import NormMeanShift, StreamRotation
from symdisc.symmetry.translation import HiddenBiasShift, TranslationSymmetry


@dataclass
class Candidate:
    symmetry: Symmetry
    kind: str  # "GL" | "SO" | "rescaling" | "bias-shift" | "mean-shift" | "norm-mean-zero" | "translation" | "unused"
    rule: str  # why it was proposed


@dataclass
class Space:
    classes: list[int]  # class roots, in coordinate order
    level: int
    odd: bool
    nonlinear: bool
    consumers: set[str]
    attachments: dict[tuple[str, int, str], dict[int, list[int]]]  # (param, axis, role) → class index → positions


def spaces(flow: Dataflow) -> list[Space]:
    """Group live coordinate classes into hidden spaces (co-produced, same labels)."""
    c: Coordinates = flow.coords
    roots = {x: c.find(x) for x in range(len(c))}
    live = {r for r, _ in roots.values() if not c.info[r].killed}
    # co-produced classes form one group (a block links all the classes of its coordinates)
    group: dict[int, int] = {}

    def gfind(r):
        while group.get(r, r) != r:
            r = group[r]
        return r

    first_of_block: dict[int, int] = {}
    for x, (r, _) in roots.items():
        b = c.block[x]
        if b in first_of_block:
            a, z = gfind(first_of_block[b]), gfind(r)
            if a != z:
                group[z] = a
        else:
            first_of_block[b] = r
    labels: dict[int, set] = defaultdict(set)
    for x, (r, _) in roots.items():
        labels[r] |= c.labels.get(x, set())
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for r in sorted(live):
        buckets[(gfind(r), frozenset(labels[r]))].append(r)
    out = []
    for members in buckets.values():
        index = {r: i for i, r in enumerate(members)}
        atts: dict[tuple[str, int, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for x, slot in c.attached:
            r, par = roots[x]
            if r in index:
                role = slot.role if par == 0 else ("consumes" if slot.role == "produces" else "produces")
                atts[(slot.param, slot.axis, role)][index[r]].append(slot.pos)
        infos = [c.info[r] for r in members]
        out.append(Space(members, max(i.level for i in infos), any(i.odd for i in infos),
                         any(i.nonlinear for i in infos), set().union(*(i.consumers for i in infos)), atts))
    return out


def _attachments(space: Space, poisoned: set[str]) -> list[Attachment] | str:
    """HiddenSpace attachments (unit-major positions), or why the space cannot be expressed."""
    h, out = len(space.classes), []
    for (param, axis, role), per in space.attachments.items():
        if param in poisoned:
            return f"{param} is used in a way detection does not follow"
        counts = {len(per.get(i, [])) for i in range(h)}
        if len(counts) != 1 or 0 in counts:
            return f"{param} meets only part of the space"
        index = tuple(p for i in range(h) for p in sorted(per[i]))
        out.append(Attachment(param, axis, role, index))
    return out


def _producer_bias(space: Space, layout: ParamLayout, scales: set[str]) -> list[tuple[str, tuple[int, ...]]]:
    """The additive 1-D producers of a space (biases, a norm's β; not its γ)."""
    return [(param, tuple(p for i in range(len(space.classes)) for p in per[i]))
            for (param, axis, role), per in space.attachments.items()
            if role == "produces" and len(layout.shape(param)) == 1 and param not in scales]


def space_candidates(flow: Dataflow, layout: ParamLayout) -> tuple[list[Candidate], list[str]]:
    found, notes = [], []
    for s in spaces(flow):
        if not any(role == "produces" for (_, _, role) in s.attachments):
            continue
        atts = _attachments(s, flow.poisoned)
        h = len(s.classes)
        where = ", ".join(sorted({p for (p, _, _) in s.attachments}))
        if isinstance(atts, str):
            notes.append(f"space of {h} over {where}: no claim ({atts})")
            continue
        if s.level >= 2 or (s.odd and s.level == 1):
            continue
        algebra = "so" if s.odd else ("diag" if s.level == 1 else "gl")
        kind = {"so": "SO", "diag": "rescaling", "gl": "GL"}[algebra]
        if algebra == "so" and h < 2:
            continue
        name = f"{kind}({h})[{where}]"
        found.append(Candidate(MatrixGroupSymmetry(HiddenSpace(layout, h, atts), algebra, name,
                                                   source="detected: change of hidden basis"), kind,
                               f"{h} coordinates produced by {where}"))
        shift = _bias_shift(s, layout, flow)
        if shift is not None:
            found.append(shift)
        for (param, _, role), per in s.attachments.items():  # a bias part whose shifts vanish (key bias)
            if len(layout.shape(param)) == 1:
                positions = sorted(p for ps in per.values() for p in ps)
                found.append(Candidate(_translation(layout, param, positions, f"translation[{param}:{role}]"),
                                       "translation", f"the {len(positions)} entries of {param} in this space"))
    return found, notes


def _bias_shift(s: Space, layout: ParamLayout, flow: Dataflow) -> Candidate | None:
    """b ↦ b + v, b' ↦ b' − W' v for a linear path from a bias b to consumers W' that all have biases b'."""
    if s.nonlinear or s.consumers:
        return None
    biases = _producer_bias(s, layout, flow.scales)
    consumers = [(p, axis) for (p, axis, role) in s.attachments if role == "consumes"]
    if len(biases) != 1 or not consumers or any(len(layout.shape(p)) != 2 or axis != 1 for p, axis in consumers):
        return None
    bias, positions = biases[0]
    outs = []
    for W, _ in consumers:
        b_out = flow.consumer_bias.get(W)
        if b_out is None:
            return None
        per = s.attachments[(W, 1, "consumes")]
        outs.append((W, b_out, tuple(p for i in range(len(s.classes)) for p in per[i])))
    sym = HiddenBiasShift(layout, bias, outs[0][1], outs[0][0], positions_in=positions, positions_out=outs[0][2],
                          more=outs[1:])
    return Candidate(sym, "bias-shift", f"{bias} reaches {', '.join(w for w, _, _ in outs)} through a linear path")


def mean_shift_candidates(flow: Dataflow, layout: ParamLayout) -> list[Candidate]:
    """Producers of coordinates read only by mean-subtracting normalisations may add c·1 along that axis."""
    c = flow.coords
    by_root: dict[int, list] = defaultdict(list)
    for x, slot in c.attached:
        by_root[c.find(x)[0]].append((x, slot))
    streams: dict[frozenset, list[int]] = defaultdict(list)
    for r in {c.find(x)[0] for x in range(len(c))}:
        cons = c.info[r].consumers
        if cons and all(k.startswith(("layer_norm:", "rms_norm:")) for k in cons):
            consumed = any(slot.role == "consumes" for _, slot in by_root[r])
            if not consumed:
                streams[frozenset(cons)].append(r)
    found = []
    for cons, roots in streams.items():
        normed = [n["normed"] for n in flow.norms if n["tag"] in cons]
        if not normed or any(v is None for v in normed):
            continue
        axis_roots = {c.find(int(x))[0] for x in normed[0].tolist()}
        if set(roots) != axis_roots:
            continue  # the shift or rotation must cover the whole normalised axis
        per_param: dict[tuple[str, int], list[int]] = defaultdict(list)
        for r in roots:
            for _, slot in by_root[r]:
                per_param[(slot.param, slot.axis)].append(slot.pos)
        rotation = _stream_rotation(flow, layout, cons, normed[0], by_root)
        if rotation is not None:
            found.append(rotation)
        for (param, axis), positions in per_param.items():
            if param in flow.poisoned or not all(k.startswith("layer_norm:") for k in cons):
                continue  # an RMS norm does not remove c·1
            V = _ones_along(layout, param, axis, sorted(positions))
            found.append(Candidate(TranslationSymmetry(layout, V, f"mean-shift[{param}]", "output",
                                                       source="detected: layer norm removes c·1"),
                                   "mean-shift", f"{param} writes only into what layer norms read"))
    return found


def _stream_rotation(flow: Dataflow, layout: ParamLayout, cons, axis_ids, by_root) -> Candidate | None:
    """SO(h−1) on the stream's 1⊥ when every norm reading it feeds only linear layers (StreamRotation)."""
    c = flow.coords
    order = {c.find(int(x))[0]: i for i, x in enumerate(axis_ids.tolist())}
    h = len(order)
    if h < 3:
        return None
    per: dict[tuple[str, int], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r, i in order.items():
        for _, slot in by_root[r]:
            if slot.role != "produces" or slot.param in flow.poisoned:
                return None
            per[(slot.param, slot.axis)][i].append(slot.pos)
    atts = []
    for (param, axis), units in per.items():
        counts = {len(units.get(i, [])) for i in range(h)}
        if len(counts) != 1 or 0 in counts:
            return None
        atts.append(Attachment(param, axis, "produces", tuple(p for i in range(h) for p in sorted(units[i]))))
    nodes = {n.name: n for n in flow.traced.graph.nodes}
    norms = []
    for rec in flow.norms:
        if rec["tag"] not in cons:
            continue
        weights = []
        for u in nodes[rec["node"]].users:
            W = flow.traced.params.get(getattr(u.args[1], "name", None)) if len(u.args) > 1 else None
            if getattr(u.target, "_opname", None) != "linear" or W is None or W in flow.poisoned:
                return None
            weights.append(W)
        norms.append((rec["gamma"], rec["beta"], weights))
    writers = ", ".join(sorted({a.name for a in atts}))
    fix = any(k.startswith("layer_norm:") for k in cons)  # mean subtraction: R must fix 1; RMS: any rotation
    sym = StreamRotation(HiddenSpace(layout, h, atts), norms, f"SO({h - fix})[stream: {writers}]", fix_ones=fix)
    return Candidate(sym, "SO", f"a stream of {h} read only by norms feeding linear layers")


def _ones_along(layout: ParamLayout, param: str, axis: int, positions: list[int]) -> torch.Tensor:
    """Directions T ↦ T + 1_positions ⊗ e_o, one per index o of T's other axes."""
    shape = layout.shape(param)
    other = [d for i, d in enumerate(shape) if i != axis]
    k = int(torch.tensor(other).prod()) if other else 1
    block = torch.zeros(*shape, k, dtype=torch.float64)
    moved = block.movedim(axis, 0)  # (n_axis, *other, k)
    eye = torch.eye(k, dtype=torch.float64).reshape(*other, k) if other else torch.ones(1, dtype=torch.float64)
    for pos in positions:
        moved[pos] = eye
    V = torch.zeros(layout.num_params, k, dtype=torch.float64)
    V[layout.slice(param)] = block.reshape(-1, k)
    return V


def norm_candidates(flow: Dataflow, layout: ParamLayout, graph) -> list[Candidate]:
    """A linear layer reading a layer norm's output directly: W ↦ W + a (1/γ)ᵀ, b ↦ b − a⟨1/γ, β⟩."""
    nodes = {n.name: n for n in graph.nodes}
    found = []
    for rec in flow.norms:
        if not rec["mean"]:
            continue
        users = list(nodes[rec["node"]].users)
        for u in users:
            if getattr(u.target, "_opname", None) != "linear" or u.args[0] is not nodes[rec["node"]]:
                continue
            W = flow.traced.params.get(u.args[1].name) if hasattr(u.args[1], "name") else None
            b = u.args[2] if len(u.args) > 2 else None
            b = flow.traced.params.get(b.name) if hasattr(b, "name") else None
            if W is None or W in flow.poisoned or (rec["beta"] is not None and b is None):
                continue
            gamma = rec["gamma"] if rec["gamma"] in layout.names else None
            beta = rec["beta"] if rec["beta"] in layout.names else None
            found.append(Candidate(NormMeanShift(layout, W, gamma, beta, b), "norm-mean-zero",
                                   f"{W} reads a layer norm's output, whose normalised part sums to 0"))
            if W in flow.embeddings:  # tied head: cancel the embedding's change with a position embedding
                c = flow.coords
                stream = c.find(flow.embeddings[W][0])[0]
                others = [E for E, ids in flow.embeddings.items()
                          if E != W and E not in flow.data_indexed and c.find(ids[0])[0] == stream]
                if others and beta is None:
                    found.append(Candidate(NormMeanShift(layout, W, gamma, None, None, compensate=others),
                                           "norm-mean-zero", f"tied {W}: its embedding change cancelled by "
                                           f"{', '.join(others)}"))
    return found


def translation_candidates(layout: ParamLayout, unused: dict[str, list[int]]) -> list[Candidate]:
    """Every 1-D parameter on its own (a bias whose shifts may be removed downstream), and unused entries."""
    found = [Candidate(_translation(layout, name, list(range(shape[0])), f"translation[{name}]"), "translation",
                       f"{name} shifted freely")
             for name, shape in zip(layout.names, layout.shapes, strict=True) if len(shape) == 1]
    for name, entries in unused.items():
        sym = _translation(layout, name, entries, f"unused[{name}]",
                           "detected: the outputs do not depend on these entries")
        found.append(Candidate(sym, "unused", f"{len(entries)} entries of {name} never reach the outputs"))
    return found


def _translation(layout: ParamLayout, name: str, entries: list[int], label: str,
                 source: str = "detected: shifts removed downstream") -> TranslationSymmetry:
    """θ ↦ θ + Σ_j c_j e_{name[entries_j]} (flat entries of one tensor)."""
    start = layout.slice(name).start
    V = torch.zeros(layout.num_params, len(entries), dtype=torch.float64)
    V[torch.tensor(entries) + start, torch.arange(len(entries))] = 1.0
    return TranslationSymmetry(layout, V, label, "output", source=source)


def softmax_candidates(flow: Dataflow, layout: ParamLayout) -> list[Candidate]:
    """Cross-entropy heads (loss level): each producer of the logits' class axis may add c·1 along it, since
    softmax(z + c·1) = softmax(z) (Table 1.1's softmax translation, found rather than declared)."""
    ids = flow.output_classes
    if ids is None or (ids < 0).any():
        return []
    c = flow.coords
    order = {c.find(int(x))[0] for x in ids.tolist()}
    per: dict[tuple[str, int], list[int]] = defaultdict(list)
    for x, slot in c.attached:
        if c.find(x)[0] in order and slot.role == "produces":
            per[(slot.param, slot.axis)].append(slot.pos)
    return [Candidate(TranslationSymmetry(layout, _ones_along(layout, param, axis, sorted(pos)),
                                          f"softmax-translation[{param}]", "loss",
                                          source="detected: softmax over the classes removes c·1"),
                      "softmax-translation", f"{param} writes the logits of a cross-entropy loss")
            for (param, axis), pos in per.items() if param not in flow.poisoned]
