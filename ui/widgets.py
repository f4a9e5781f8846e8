"""The widget for each kind of declared Setting, and the image element every page uses."""
from __future__ import annotations

import numpy as np
import streamlit as st

from aigc import Setting


def setting_input(setting: Setting, key: str, where=st, disabled: bool = False, slider: bool = False):
    """Renders `setting` in `where` (st, a column, the sidebar) and returns the value chosen: a slider along
    ordered choices, buttons for a few categories, a switch for a bool, a box for a number (a slider with
    `slider`, where moving it should redraw at once)."""
    common = dict(label=setting.label, key=key, help=setting.help or None, disabled=disabled)
    if setting.choices:
        if setting.ordered or len(setting.choices) > 12:
            return where.select_slider(options=setting.choices, value=setting.default, format_func=setting.show,
                                       **common)
        return where.radio(options=setting.choices, index=setting.choices.index(setting.default),
                           format_func=setting.show, horizontal=True, **common)
    if isinstance(setting.default, bool):
        return where.toggle(value=setting.default, **common)
    if slider:
        return where.slider(min_value=setting.low, max_value=setting.high, value=setting.default, step=setting.step,
                            **common)
    return where.number_input(min_value=setting.low, max_value=setting.high, value=setting.default,
                              step=setting.step, format=setting.format, **common)


def image(pixels: np.ndarray, width: int | None = None, caption: str | None = None) -> None:
    """A uint8 image as a PNG: the pixels exactly, no JPEG re-encode."""
    st.image(pixels, width=width or "stretch", caption=caption, clamp=True, output_format="PNG")
