"""Shared fixtures. Tests run on CPU with few threads; nothing here touches the network."""

from __future__ import annotations

import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
