"""Relaxed k-hot subset sampling with Gumbel top-k (Xie and Ermon, IJCAI 2019).

"Reparameterizable Subset Sampling via Continuous Relaxations": one logit vector log_alpha over the
D features; a sample perturbs it once with Gumbel noise, r_1 = log_alpha + g, and relaxes the
top-k of r in K rounds of a tempered softmax, each round down-weighting what the earlier ones took:

    a_j = softmax(r_j / T),    r_{j+1} = r_j + log(1 - a_j),    mask = a_1 + ... + a_K.

Every round sums to 1, so the mask sums to exactly K; as T -> 0 (with distinct r) it tends to the
k-hot vector of the top K of r, which with Gumbel noise is an exact sample of K features without
replacement (Gumbel top-k). Evaluation is noise-free: the top K of log_alpha, K distinct features.

Choices the paper leaves open (it learns the logits with an amortised explainer, not as a free
vector), and what this module does:

- log(1 - a_j) is computed without forming 1 - a_j where that cancels: log1p(-a) for every entry
  but the round's largest, and for the largest (the one a round takes) the log-sum-exp of the other
  entries of r_j / T minus that of all. This is the same formula, exact when a rounds to 1 in
  floating point. The authors' code floors 1 - a at the smallest positive float instead, which
  caps the down-weighting at about -87 (float32): a feature whose perturbed logit leads by more
  than that is taken again by the next round (tests/test_new_selectors.py has the case).
- Entries of r_j / T more than 60 below their row's largest are raised to that floor before any
  exp (shares of e^-60 instead of smaller ones), and log1p is not evaluated at shares below 1e-15,
  each wherever more than 1 in 4 entries would need it (on CUDA always):
  torch's CPU exp and log1p slow down about 100x per element in those ranges, which at low T is most
  of them (``FLOOR_BELOW_MAX`` says why in full; benchmarks/bench_topk.py times it). In float32 the
  50 rounds at T <= 0.03 amplify rounding to order 1 with or without the floors, so a run is
  reproducible from its seed on one implementation, not across the two.
- The mask's entries are NOT bounded by 1 in general: the correction log(1 - a_j) is not divided
  by T while the softmax is, so at T != 1 a feature split between two rounds can collect more
  than 1 (e.g. K = D = 2, r = (log 9, 0), T = 1 gives (1.4, 0.6)). They are >= 0, sum to K, and
  tend to {0, 1} as T -> 0 for distinct r. tests/test_new_selectors.py pins that example.
- What the decoder reads (``output``):

  * ``masked`` (default): x * mask, all D columns, K of them non-zero at evaluation (x * k-hot). This
    is the paper's use of the relaxed mask (L2X-style). The decoder is D wide; the joint decoder's
    test metrics still use exactly the K selected features, and the framework adds the
    retrained-decoder numbers as for any selector whose ``out_features`` is not K.
  * ``gathered``: the K rounds as K relaxed one-hot rows, x_S[b, j] = a_j[b] . x[b] (K inputs, as
    CAE); evaluation gives the top K of log_alpha in decreasing order of log_alpha, which is the
    order the rounds take them in at low temperature. With noise the rounds' order varies between
    examples while their margins are below the Gumbel scale, so a column of the decoder's input is
    not tied to one feature early in training.
- The temperature is annealed by the framework's callback exactly as CAE's (10 -> 0.01,
  exponential, per epoch, by default).
- Noise: ``per_example`` (default, as CAE's reference) draws a B x D Gumbel matrix per step; the K
  rounds then keep K x B x D values for backward, the same as CAE's per-example sample.
  ``per_batch`` draws one D vector shared by the batch.
- Parameterisation of log_alpha (the paper has none):

  * ``direct`` (model=topk): a free D vector, initialised as one row of CAE's reference
    initialisation (U(0, 1) entries divided by their sum: nearly uniform).
  * ``indirect`` (model=ipcae_topk): log_alpha = psi W^T + b with a 1 x P embedding psi ~ N(0, 1)
    through an affine map (W: D x P, b: D; PyTorch's default nn.Linear init), the IP-CAE
    parameterisation with a single row. IP-CAE's argument for it is that a shared map couples the
    K rows and keeps them from collapsing onto one feature; top-k has one row and cannot select
    duplicates, so what remains is the over-parameterisation's effect on the optimisation (the
    logits move in the span of W's columns with Adam's per-parameter scaling), which is what this
    variant measures. P defaults to D as in IP-CAE; the map then holds D^2 parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ipcae.errors import ConfigError
from ipcae.gumbel import sample_gumbel
from ipcae.selectors.base import FeatureSelector, TemperatureControlled

OUTPUTS = ("masked", "gathered")
PARAMETERISATIONS = ("direct", "indirect")
NOISE_MODES = ("per_example", "per_batch")


# An entry of z more than this far below its row's largest is raised to that floor before any exp: its
# softmax share is then e^-60 (about 1e-26) instead of something smaller, far below what a round that
# sums to 1 resolves: the rounds agree with the unfloored recursion (relaxed_topk_rounds_reference) as
# closely as that recursion's own float rounding allows (tests/test_new_selectors.py). log(1 - a) is -a
# where a < TINY_SHARE (exact to float64 there) and log1p(-a) elsewhere, so that log1p is not
# evaluated at the tiny shares.
# Why: as T falls most entries of r / T lie hundreds of units below the largest, and torch's CPU exp
# and log1p take a slow path (about 100x per element) for arguments that underflow or whose intermediates
# are subnormal, which at T <= 0.1 is most entries (benchmarks/bench_topk.py times both forms).
# Both guards apply where enough entries need them (_guarded).
FLOOR_BELOW_MAX = 60.0
TINY_SHARE = 1e-15


def _floored(z: Tensor) -> Tensor:
    """z with every entry below (row max - FLOOR_BELOW_MAX) raised to it; rows of -inf stay -inf."""
    floor = z.amax(dim=-1, keepdim=True).detach() - FLOOR_BELOW_MAX
    return z.clamp(min=floor) if _guarded(z < floor) else z


def _log1p_neg(rest: Tensor, a: Tensor) -> Tensor:
    """log(1 - rest) for 0 <= rest <= 1/2 (the round ``a`` with its largest entry zeroed): log1p(-rest),
    and -rest where rest < TINY_SHARE once guarded."""
    if not _guarded(a < TINY_SHARE):  # a, not rest: a's largest entry is never tiny, rest's zero would be
        return torch.log1p(-rest)
    return torch.where(rest < TINY_SHARE, -rest, torch.log1p(-rest.clamp(min=TINY_SHARE)))


def _guarded(slow: Tensor) -> bool:
    """Whether to guard the entries flagged ``slow``. On CUDA always (reading the count would stall the
    step). On CPU, where reading it is free, once more than 1 in 4 entries would take the slow path: below
    that (T around 0.3) the guard's own passes, forward and backward, cost more than they save
    (benchmarks/bench_topk.py). Either way the values agree to far below float precision."""
    return slow.device.type != "cpu" or int(slow.sum()) * 4 > slow.numel()


def log_one_minus_softmax(z: Tensor) -> Tensor:
    """log(1 - softmax(z)) over the last axis, accurate when an entry of the softmax rounds to 1."""
    floored = _floored(z)
    return _log_one_minus(z, floored, torch.softmax(floored, dim=-1))


def _log_one_minus(z: Tensor, floored: Tensor, a: Tensor) -> Tensor:
    """log(1 - a) for a = softmax(floored), floored = _floored(z).

    log1p(-a) for every entry but the largest (there a <= 1/2, no cancellation); for the largest,
    logsumexp of the other entries minus logsumexp of all, which stays finite and exact. The other
    entries' logsumexp is floored against their own largest, not the row's, so a taken feature's
    log(1 - a) is exactly -(its lead over the runner-up) however large that lead is.
    """
    top = z.argmax(dim=-1, keepdim=True)
    others = z.scatter(-1, top, float("-inf"))
    at_top = torch.logsumexp(_floored(others), dim=-1, keepdim=True) - torch.logsumexp(floored, dim=-1, keepdim=True)
    # The largest entry is zeroed before log1p so that a == 1 there cannot put 0 * inf into the gradient.
    rest = a.scatter(-1, top, 0.0)
    return _log1p_neg(rest, a).scatter(-1, top, at_top)


def relaxed_topk_rounds(scores: Tensor, k: int, temperature: Tensor | float) -> Tensor:
    """The K relaxed one-hot rounds of the perturbed scores ``scores`` (... x D) -> (... x K x D).

    a_1 = softmax(r_1 / T); r_{j+1} = r_j + log(1 - a_j); a_{j+1} = softmax(r_{j+1} / T).
    """
    rounds = []
    r = scores
    for j in range(k):
        z = r / temperature
        floored = _floored(z)
        rounds.append(torch.softmax(floored, dim=-1))
        if j < k - 1:
            r = r + _log_one_minus(z, floored, rounds[-1])
    return torch.stack(rounds, dim=-2)


def relaxed_topk_rounds_reference(scores: Tensor, k: int, temperature: Tensor | float) -> Tensor:
    """relaxed_topk_rounds without the floors: the same recursion and the same exact log(1 - a) for the
    taken entry, on every entry as it is. Slow on CPU at low T; kept to test and time the floored one against."""
    rounds = []
    r = scores
    for j in range(k):
        z = r / temperature
        log_a = torch.log_softmax(z, dim=-1)
        rounds.append(log_a.exp())
        if j < k - 1:
            top = z.argmax(dim=-1, keepdim=True)
            others = torch.logsumexp(z.scatter(-1, top, float("-inf")), dim=-1, keepdim=True)
            at_top = others - torch.logsumexp(z, dim=-1, keepdim=True)
            rest = rounds[-1].scatter(-1, top, 0.0)
            r = r + torch.log1p(-rest).scatter(-1, top, at_top)
    return torch.stack(rounds, dim=-2)


def relaxed_topk_mask(scores: Tensor, k: int, temperature: Tensor | float) -> Tensor:
    """The relaxed k-hot mask: the sum of the K rounds (... x D), summing to K over the last axis."""
    return relaxed_topk_rounds(scores, k, temperature).sum(dim=-2)


def topk_mask(scores: Tensor, k: int) -> Tensor:
    """The hard k-hot mask of the K largest entries (the T -> 0 limit of the relaxation)."""
    return torch.zeros_like(scores).scatter_(-1, scores.topk(k, dim=-1).indices, 1.0)


class GumbelTopKSelector(TemperatureControlled, FeatureSelector):
    """Relaxed k-hot subset sampling with one logit vector over the D features (see the module docstring)."""

    def __init__(
        self,
        num_features: int,
        k: int,
        output: str = "masked",
        parameterisation: str = "direct",
        embedding_dim: int | None = None,
        noise: str = "per_example",
    ) -> None:
        super().__init__(num_features, k)
        if output not in OUTPUTS:
            raise ConfigError(f"model.selector.output={output!r} is unknown: use one of {', '.join(OUTPUTS)}")
        if parameterisation not in PARAMETERISATIONS:
            raise ConfigError(
                f"model.selector.parameterisation={parameterisation!r} is unknown: "
                f"use one of {', '.join(PARAMETERISATIONS)}"
            )
        if noise not in NOISE_MODES:
            raise ConfigError(f"model.selector.noise={noise!r} is unknown: use one of {', '.join(NOISE_MODES)}")
        self.output, self.parameterisation, self.noise = output, parameterisation, noise
        self.init_temperature()
        if parameterisation == "direct":
            if embedding_dim is not None:
                raise ConfigError(
                    f"model.selector.embedding_dim={embedding_dim!r} needs model.selector.parameterisation=indirect: "
                    "set it to null or use the indirect parameterisation"
                )
            log_alpha = torch.rand(num_features)
            self.log_alpha = nn.Parameter(log_alpha / log_alpha.sum())
        else:
            p = num_features if embedding_dim is None else embedding_dim
            if not isinstance(p, int) or isinstance(p, bool) or p < 1:
                raise ConfigError(f"model.selector.embedding_dim={embedding_dim!r} must be a positive integer or null")
            self.embedding = nn.Parameter(torch.randn(1, p))
            self.projection = nn.Linear(p, num_features)

    @property
    def out_features(self) -> int:
        return self.num_features if self.output == "masked" else self.k

    def logits(self) -> Tensor:
        """log_alpha, a D vector."""
        if self.parameterisation == "direct":
            return self.log_alpha
        return self.projection(self.embedding).squeeze(0)

    def selected_indices(self) -> Tensor:
        """The K largest logits, in decreasing order."""
        return self.logits().topk(self.k).indices

    def selected_probabilities(self) -> Tensor:
        """Inclusion probabilities at T = 1 are intractable; this is the first round's softmax(log_alpha)."""
        return torch.softmax(self.logits(), dim=-1)[self.selected_indices()]

    def _perturbed(self, x: Tensor) -> Tensor:
        log_alpha = self.logits()
        shape = (x.shape[0], self.num_features) if self.noise == "per_example" else (self.num_features,)
        return log_alpha + sample_gumbel(shape, log_alpha)

    def forward_train(self, x: Tensor) -> Tensor:
        rounds = relaxed_topk_rounds(self._perturbed(x), self.k, self.temperature.to(x.dtype))
        if self.output == "masked":
            return x * rounds.sum(dim=-2)
        # gathered: x_S[b, j] = sum_d a_j[b, d] x[b, d]
        if rounds.dim() == 2:
            return x @ rounds.T
        return (rounds * x.unsqueeze(1)).sum(-1)

    def forward_eval(self, x: Tensor) -> Tensor:
        if self.output == "masked":
            return x * topk_mask(self.logits(), self.k).to(x.dtype)
        return x[:, self.selected_indices()]

    def diagnostics(self) -> dict[str, Tensor | float]:
        """``topk_mass``: the K selected features' share of softmax(log_alpha) (K / D at the start);
        ``margin``: log_alpha's K-th largest minus its (K+1)-th (how settled the subset is)."""
        log_alpha = self.logits()
        probs = torch.softmax(log_alpha, dim=-1)
        values = log_alpha.topk(min(self.k + 1, self.num_features)).values
        margin = values[self.k - 1] - values[self.k] if self.k < self.num_features else torch.zeros(())
        return {"topk_mass": probs[self.selected_indices()].sum(), "margin": margin}
