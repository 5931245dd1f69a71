"""Sequential Attention (Yasuda, Bateni, Chen, Chen, Fahrbach, Mirrokni; ICLR 2023).

"Sequential Attention for Feature Selection": greedy forward selection carried out inside one
training run. Training is cut into K phases; in each, trainable attention logits over the features
not yet selected give softmax weights w, and the network reads

    x * (s + w),    s the 0/1 mask of the features selected so far,

training jointly with the logits. At the end of the phase the unselected feature with the largest
logit joins s. For linear regression this is Orthogonal Matching Pursuit (the paper's theorem).

The phase schedule, explicit (the paper says only "phases"; the reference implementation,
google-research/sequential_attention, is followed where it is definite):

- N is the number of optimiser steps of the whole run (max_epochs x mini-batches per epoch), given
  by the :class:`ipcae.schedule.TrainingSteps` callback; the selector counts its training forward
  passes (one per optimiser step) itself, so phases do not depend on how the data module groups
  mini-batches. The count is part of the checkpoint.
- Warm-up: the first S0 = floor(``start_fraction`` * N) steps read x unweighted (all features, no
  attention; the logits get no gradient), the reference's 10 %.
- The K phases split steps [S0, S1), S1 = floor(``stop_fraction`` * N), into K consecutive runs;
  phase j (0-based) ends after step b_j = S0 + floor((j + 1) (S1 - S0) / K), and its feature joins
  s before step b_j is taken (or, for b_{K-1} = N, before the next evaluation forward pass).
  Phases need S1 - S0 >= K (one step each), else a ConfigError names the numbers.
  ``stop_fraction`` = 1 (the reference's) spends the whole run selecting; below 1 the remaining
  steps train the network on x * s, exactly the K selected features.
- Difference from the reference implementation: it selects at the START of each phase (when the
  phase index first reaches the number selected), so its first feature is the argmax of logits
  that have not yet been trained (the warm-up gives them no gradient: a near-random pick), and
  the attention trained during its last phase is never used. Here a feature joins at the END of
  the phase that trained the logits for it, as the paper describes.
- Logits start at N(0, ``init_std``^2) (1e-5, the reference's) and, after each selection, are
  reset to those initial values (the reference draws fresh N(0, 1e-5^2) values; reusing the first
  draw keeps evaluation from consuming random numbers). ``reset_logits=false`` keeps them.
  The optimiser's moments for the logits are not reset (as in the reference).
- Evaluation (validation, test): x * k-hot of the selected features. Before all K have joined, the
  remaining places are filled by the unselected features with the largest logits (what the method
  would add if phases ended now), so the evaluation always uses K distinct features. With the
  TrainingSteps callback (model=seqattn adds it) the best-validation checkpoint is only chosen among
  epochs whose selection is complete.
- The decoder is D wide (it reads x * (s + w)); its joint test metrics use exactly the K selected
  features, and the framework adds the retrained-decoder numbers, which is the paper's protocol
  (it trains a fresh network on the selected features).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ipcae.errors import ConfigError
from ipcae.selectors.base import FeatureSelector, StepScheduled


def phase_boundaries(total_steps: int, k: int, start_fraction: float, stop_fraction: float) -> list[int]:
    """b_j, j = 0..K-1: the number of steps after which the j-th feature joins the selection."""
    s0 = int(start_fraction * total_steps)
    s1 = int(stop_fraction * total_steps)
    if s1 - s0 < k:
        raise ConfigError(
            f"Sequential Attention needs at least K={k} optimiser steps for its phases, but "
            f"steps {s0}..{s1} of {total_steps} leave {s1 - s0}: raise trainer.max_epochs or "
            "model.selector.stop_fraction, or lower model.selector.start_fraction"
        )
    return [s0 + (j + 1) * (s1 - s0) // k for j in range(k)]


class SequentialAttentionSelector(StepScheduled, FeatureSelector):
    """Greedy forward selection with attention over the unselected features (see the module docstring)."""

    def __init__(
        self,
        num_features: int,
        k: int,
        start_fraction: float = 0.1,
        stop_fraction: float = 1.0,
        init_std: float = 1e-5,
        reset_logits: bool = True,
    ) -> None:
        super().__init__(num_features, k)
        if not 0 <= start_fraction < stop_fraction <= 1:
            raise ConfigError(
                f"model.selector.start_fraction={start_fraction} and stop_fraction={stop_fraction} must satisfy "
                "0 <= start_fraction < stop_fraction <= 1"
            )
        if not init_std >= 0:
            raise ConfigError(f"model.selector.init_std={init_std} must be >= 0")
        self.start_fraction, self.stop_fraction = float(start_fraction), float(stop_fraction)
        self.reset_logits = bool(reset_logits)
        self.logits = nn.Parameter(init_std * torch.randn(num_features))
        self.register_buffer("initial_logits", self.logits.detach().clone())
        self.register_buffer("selected_mask", torch.zeros(num_features))
        # Schedule state, kept on the host (no device synchronisation per step) and checkpointed
        # through get_extra_state.
        self.step = 0
        self.total_steps = 0
        self.order: list[int] = []
        self.joined_at: list[int] = []
        self._boundaries: list[int] = []

    @property
    def out_features(self) -> int:
        return self.num_features

    # -- schedule -------------------------------------------------------------------------------

    def set_total_steps(self, total: int) -> None:
        self._boundaries = phase_boundaries(int(total), self.k, self.start_fraction, self.stop_fraction)
        self.total_steps = int(total)

    @property
    def warmup_steps(self) -> int:
        return int(self.start_fraction * self.total_steps)

    @property
    def selection_complete(self) -> bool:
        self._advance()
        return len(self.order) == self.k

    def _advance(self) -> None:
        """Let every phase that has ended (by the step count) add its feature."""
        while self._boundaries and len(self.order) < self.k and self.step >= self._boundaries[len(self.order)]:
            self._select_next()

    @torch.no_grad()
    def _select_next(self) -> None:
        masked = self.logits.masked_fill(self.selected_mask.bool(), float("-inf"))
        index = int(masked.argmax())
        self.order.append(index)
        self.joined_at.append(self.step)
        self.selected_mask[index] = 1.0
        if self.reset_logits:
            self.logits.copy_(self.initial_logits)

    def get_extra_state(self) -> dict[str, Any]:
        return {"step": self.step, "total_steps": self.total_steps, "order": list(self.order),
                "joined_at": list(self.joined_at)}  # fmt: skip

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.step, self.order, self.joined_at = int(state["step"]), list(state["order"]), list(state["joined_at"])
        self.total_steps = int(state["total_steps"])
        self._boundaries = (
            phase_boundaries(self.total_steps, self.k, self.start_fraction, self.stop_fraction)
            if self.total_steps
            else []
        )

    # -- selection ------------------------------------------------------------------------------

    def attention(self) -> Tensor:
        """Softmax of the logits over the unselected features (0 on the selected ones)."""
        return torch.softmax(self.logits.masked_fill(self.selected_mask.bool(), float("-inf")), dim=-1)

    def input_weights(self) -> Tensor:
        """What x is multiplied by at the current step: 1 (warm-up), s + w (phases) or s (done)."""
        if self.step < self.warmup_steps:
            return torch.ones_like(self.selected_mask)
        if len(self.order) < self.k:
            return self.selected_mask + self.attention()
        return self.selected_mask

    def forward_train(self, x: Tensor) -> Tensor:
        if not self.total_steps:
            raise ConfigError(
                "Sequential Attention needs the number of training steps from the TrainingSteps callback: "
                "use model=seqattn, which adds it, or add ipcae.schedule.TrainingSteps to the callbacks"
            )
        self._advance()
        out = x * self.input_weights().to(x.dtype)
        self.step += 1
        return out

    def selected_indices(self) -> Tensor:
        """The selected features in the order they joined, then (while phases remain) the unselected
        features with the largest logits."""
        self._advance()
        device = self.logits.device
        chosen = torch.tensor(self.order, dtype=torch.long, device=device)
        missing = self.k - len(self.order)
        if missing == 0:
            return chosen
        masked = self.logits.detach().masked_fill(self.selected_mask.bool(), float("-inf"))
        return torch.cat([chosen, masked.topk(missing).indices])

    def selected_probabilities(self) -> Tensor:
        """1 for the features that joined; the attention weight for provisional ones."""
        indices = self.selected_indices()
        return torch.where(self.selected_mask[indices].bool(), 1.0, self.attention().detach()[indices])

    def forward_eval(self, x: Tensor) -> Tensor:
        mask = torch.zeros_like(self.selected_mask).scatter_(0, self.selected_indices(), 1.0)
        return x * mask.to(x.dtype)

    def diagnostics(self) -> dict[str, Tensor | float]:
        """``n_selected``: features that have joined; ``max_attention``: the largest attention weight."""
        return {"n_selected": float(len(self.order)), "max_attention": self.attention().max()}
