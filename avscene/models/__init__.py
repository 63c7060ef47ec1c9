"""Pure ``nn.Module``s and their config dataclasses and presets."""

from avscene.models.shift_net import PRESETS, ShiftNet, ShiftNetConfig, get_preset

__all__ = ["PRESETS", "ShiftNet", "ShiftNetConfig", "get_preset"]
