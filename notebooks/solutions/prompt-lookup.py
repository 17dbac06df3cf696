# Exercise "prompt-lookup": fill in the body, then run the check below.
def lookup_draft(ids: list[int], gamma: int) -> list[int]:
    """γ tokens copied from after the most recent earlier occurrence of ids' last two tokens ([] if none)."""
    starts = [i for i in range(len(ids) - 2) if ids[i:i + 2] == ids[-2:]]  # i + 2 < len(ids): a token follows
    if not starts:
        return []
    begin = max(starts) + 2
    return [ids[begin + k % (len(ids) - begin)] for k in range(gamma)]  # past the end, the copy repeats
