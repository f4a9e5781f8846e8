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
    """The Explore page's sections, in the order a model lists them."""
    GROUPS = "groups"            # one sample from each group a self-conditioned GAN found
    SLIDERS = "sliders"          # one sample from a seed, moved along measured directions of z
    MORPH = "morph"              # a path between two seeds' latent vectors
    LATENT_MAP = "latent_map"    # a 2-D latent space, shown whole with the test digits encoded on it
