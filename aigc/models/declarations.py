"""What a model declares about itself, so that a front end can offer its controls and draw its charts
without knowing which model it is: the settings a person may change (with ranges, help and defaults),
the chart panels of its training metrics, and the Explore sections that apply to it.

The app renders these declarations; no page tests a model's name. A new model family is one file in
aigc/models/ that fills them in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch


@dataclass(frozen=True)
class Setting:
    """One value a person may choose: a number between `low` and `high`, one of `choices`, or a switch
    (a bool default). `name` is the config field or keyword argument it sets."""
    name: str
    label: str
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    step: float | None = None
    format: str | None = None                 # printf-style, for a number input ("%.5f")
    choices: tuple = ()
    ordered: bool = False                     # the choices are points on a scale (sizes, counts), not categories
    choice_labels: dict = field(default_factory=dict)   # how to show a choice other than str(choice)

    def show(self, choice) -> str:
        return self.choice_labels.get(choice, str(choice))


@dataclass(frozen=True)
class Series:
    """One line of a chart: a metric that train_step reports."""
    metric: str
    label: str
    color: str


@dataclass(frozen=True)
class Panel:
    """One chart of the Train page."""
    title: str
    series: tuple[Series, ...]
    y_range: tuple[float, float] | None = None      # fixed, e.g. (0, 1) for probabilities; None: fit the data
    reference: float | None = None                  # a dashed horizontal line at this value


class Section(str, Enum):
    """The Explore page's sections, in the order a model lists them. A model that lists one has what it
    draws from: encode() and decode() for LATENT_MAP, trajectory() for TRAJECTORY, noised() and
    schedule() for FORWARD_PROCESS, what its `redraw` names for DRAWING."""
    GROUPS = "groups"            # one sample from each group a self-conditioned GAN found
    SLIDERS = "sliders"          # one sample from a seed, moved along measured directions of z
    TRAJECTORY = "trajectory"    # sampling step by step: the noisy x_t and the estimate of x₀ at each step
    MORPH = "morph"              # a path between two seeds' latent vectors
    FORWARD_PROCESS = "forward"  # a real digit noised step by step, and the noise schedule
    LATENT_MAP = "latent_map"    # a 2-D latent space, shown whole with the test digits encoded on it
    DRAWING = "drawing"          # a digit the person draws, and what the classifier and the model make of it


class Redraw(str, Enum):
    """How a model redraws a digit a person drew (Section.DRAWING)."""
    ENCODE = "encode"            # encode() to its code, decode() back: a VAE's reading and reconstruction
    INVERT = "invert"            # the z whose sample is closest, found by optimisation (aigc.inversion)
    EDIT = "edit"                # noised part of the way, then denoised by the model (SDEdit): edit()


@dataclass(frozen=True)
class Trajectory:
    """What a model with Section.TRAJECTORY returns from trajectory(): its way from noise to b images."""
    t: torch.Tensor           # (k + 1,) the noise level before the first step and after each, from 1 to 0
    images: torch.Tensor      # (k + 1, b, 1, 28, 28) x_t at those levels: the starting noise, then after each step
    estimates: torch.Tensor   # (k, b, 1, 28, 28) the estimate x̂₀ of the finished image made at each step
