"""Keys pressed in a widget go to the widget, not to JupyterLab's notebook shortcuts.

In JupyterLab's command mode, ArrowUp/ArrowDown, Enter and single letters are notebook shortcuts (next cell, edit cell,
...) whenever the focused element is not a text field. A focused dropdown or slider loses those keys: ArrowDown on the
playground's drafter dropdown moved the cell cursor instead of picking the next drafter (found by the browser tests).
Lumino skips its shortcuts for a key event whose target carries the ``data-lm-suppress-shortcuts`` attribute, so
:func:`keyboard_scope` returns an invisible widget that gives the attribute to every element that takes the focus inside
its nearest ancestor with a CSS class. Put it inside that container (a Box given the class with ``add_class``).
"""

from __future__ import annotations

import ipywidgets as widgets

_ESM = """
function render({ model, el }) {
  let tries = 0;
  const suppress = (node) => node.setAttribute("data-lm-suppress-shortcuts", "true");
  const mark = () => {  // the view is attached to the page a moment after render()
    const scope = el.closest("." + model.get("scope"));
    if (scope) {
      suppress(scope);
      // Lumino matches a shortcut on the focused element before it looks for the attribute on its ancestors, so
      // each control must carry it itself; controls are re-rendered, so mark whichever one receives the focus.
      scope.addEventListener("focusin", (event) => suppress(event.target));
    } else if (++tries < 200) setTimeout(mark, 50);
  };
  mark();
}
export default { render };
"""


try:
    import anywidget
    import traitlets

    class KeyboardScope(anywidget.AnyWidget):
        """Sets ``data-lm-suppress-shortcuts`` on its nearest ancestor with the CSS class ``scope``."""

        _esm = _ESM
        scope = traitlets.Unicode().tag(sync=True)

except ImportError:  # anywidget is a dependency; without it the keys simply stay JupyterLab's
    KeyboardScope = None


def keyboard_scope(css_class: str) -> widgets.DOMWidget | None:
    """An invisible widget that keeps keys inside the ancestor with ``css_class`` (None where anywidget is missing)."""
    if KeyboardScope is None:
        return None
    return KeyboardScope(scope=css_class, layout=widgets.Layout(display="none"))


def scoped_vbox(children: list, css_class: str, parts: dict[str, widgets.DOMWidget], part_prefix: str) -> widgets.VBox:
    """A VBox of ``children`` with the class ``css_class`` whose keys stay inside it (a :func:`keyboard_scope`).

    Each ``parts[name]`` gets the class ``part_prefix + name``: stable hooks for CSS and the browser tests.
    """
    scope = keyboard_scope(css_class)
    box = widgets.VBox([*children, scope] if scope is not None else children)
    box.add_class(css_class)
    for name, part in parts.items():
        part.add_class(part_prefix + name)
    return box
