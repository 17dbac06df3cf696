# Exercise "bug-hunt": fill in the body, then run the check below.
from specdec_lab.verifiers.laws import law_distance


def changes_the_law(lab, verifier) -> bool:
    """True when the loop with this verifier emits its first two tokens with a law other than the target's.

    lab.exact_law(verifier) and lab.truth() are both dicts {(token, token): probability}; rounding leaves ~1e-15.
    """
    return law_distance(lab.exact_law(verifier), lab.truth()) > 1e-9
