"""Decoders that map the K selected features to the task output."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLPDecoder(nn.Module):
    """Linear -> [LayerNorm] -> LeakyReLU -> Dropout blocks, then a linear output layer.

    With ``hidden_sizes=[]`` it is a single linear map (the linear decoder).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (200,),
        layer_norm: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers.append(nn.Linear(width, hidden))
            if layer_norm:
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.LeakyReLU(negative_slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
