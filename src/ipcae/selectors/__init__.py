"""Feature selectors. The public interface is :class:`FeatureSelector`; the framework's own:

- :class:`DirectSelector` (CAE) and :class:`IndirectSelector` (IP-CAE), the concrete family
  (:class:`ConcreteSelector`: temperature, Gumbel noise, optional GJSD term);
- :class:`STGSelector`, stochastic gates;
- :class:`FixedSelector`, given indices; :class:`AllFeatures`, every feature (a reference line);
- :class:`GumbelTopKSelector`, relaxed k-hot subset sampling (Xie and Ermon 2019);
- :class:`SANDSelector`, additive noise distortion (Pad, Hammoud et al. 2025);
- :class:`SequentialAttentionSelector`, greedy selection with attention (Yasuda et al. 2023).
"""

from ipcae.selectors.all_features import AllFeatures
from ipcae.selectors.base import FeatureSelector, StepScheduled, TemperatureControlled, check_k
from ipcae.selectors.concrete import ConcreteSelector, DirectSelector, IndirectSelector
from ipcae.selectors.fixed import FixedSelector
from ipcae.selectors.gates import STGSelector
from ipcae.selectors.sand import SANDSelector
from ipcae.selectors.sequential import SequentialAttentionSelector
from ipcae.selectors.subset import GumbelTopKSelector

__all__ = [
    "AllFeatures",
    "ConcreteSelector",
    "DirectSelector",
    "FeatureSelector",
    "FixedSelector",
    "GumbelTopKSelector",
    "IndirectSelector",
    "SANDSelector",
    "STGSelector",
    "SequentialAttentionSelector",
    "StepScheduled",
    "TemperatureControlled",
    "check_k",
]
