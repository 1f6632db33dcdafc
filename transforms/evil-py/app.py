"""A hostile Python transform for corral's tests: a dispatch table from
behaviour names to attacks (one module each under ``attacks/``).

Params ``{"evil": {"N": "behaviour"}}`` make iteration N misbehave; every
other iteration copies its config rows (``id, some_column, value`` where
``some_column == N``), so the tests can check that good iterations are
unharmed. A behaviour that the sandbox should stop and does not fails its
iteration with a message saying what got through.
"""

from attacks import ATTACKS
from attacks.common import copy_rows
from corral_guest import export


@export
def run(ctx):
    behaviour = ctx.params.get("evil", {}).get(str(ctx.iteration))
    if behaviour is None:
        copy_rows(ctx)
        return
    attack = ATTACKS.get(behaviour)
    if attack is None:
        raise ValueError("evil-py has no behaviour %r (it has: %s)" % (behaviour, ", ".join(sorted(ATTACKS))))
    attack(ctx)
