"""Pure ``nn.Module``s and their config dataclasses and presets."""

from avscene.models.action_net import ActionNet, ActionNetConfig
from avscene.models.shift_net import PRESETS, ShiftNet, ShiftNetConfig, get_preset
from avscene.models.separation_net import SeparationNet as SeparationNet, SeparationNetConfig as SeparationNetConfig
from avscene.models.two_tower import TwoTowerConfig, TwoTowerNet

__all__ = ["ActionNet", "ActionNetConfig", "PRESETS", "ShiftNet", "ShiftNetConfig", "TwoTowerConfig", "TwoTowerNet",
           "get_preset"]
