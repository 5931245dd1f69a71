"""Feature selectors. The public interface is :class:`FeatureSelector`; the framework's own:

- :class:`DirectSelector` (CAE) and :class:`IndirectSelector` (IP-CAE), the concrete family
  (:class:`ConcreteSelector`: temperature, Gumbel noise, optional GJSD term);
- :class:`STGSelector`, stochastic gates;
- :class:`FixedSelector`, given indices.
"""

from ipcae.selectors.base import FeatureSelector, TemperatureControlled, check_k
from ipcae.selectors.concrete import ConcreteSelector, DirectSelector, IndirectSelector
from ipcae.selectors.fixed import FixedSelector
from ipcae.selectors.gates import STGSelector

__all__ = [
    "ConcreteSelector",
    "DirectSelector",
    "FeatureSelector",
    "FixedSelector",
    "IndirectSelector",
    "STGSelector",
    "TemperatureControlled",
    "check_k",
]
