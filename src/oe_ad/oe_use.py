"""How a method declares its use of OE images; torch-free, so the schema reads it without importing the method.

``oe_use`` (a class attribute of every method): ``required`` (a config without an OE pool is refused),
``optional`` (trains with a pool when one is configured) or ``none`` (one-class: a configured pool is ignored).
``oe_switch``: the name of a boolean option that makes a ``none`` method train with OE after all (Deep SVDD's
``with_oe``, as the paper's code trains it).
"""

from collections.abc import Mapping

OE_USES = ("required", "optional", "none")


def trains_with_oe(oe_use: str, oe_switch: str | None, options: Mapping) -> bool:
    """Whether a method so declared, configured with ``options``, trains with an OE pool when one is configured."""
    return oe_use != "none" or bool(oe_switch and options.get(oe_switch, False))
