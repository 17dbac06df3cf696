# Exercise "greedy-prefix": fill in the body, then run the check below.
def accepted_count(p_draft: list[float]) -> int:
    """How many drafts greedy verification keeps, from the target's probability of each drafted token at T = 0."""
    count = 0
    for p_x in p_draft:
        if p_x < 1.0:  # not the target's argmax: rejected, and every later draft with it
            break
        count += 1
    return count
