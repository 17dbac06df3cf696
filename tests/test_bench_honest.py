"""The speed-cell caveat: repeats that disagree, or a value no working loop can produce, are said before the number."""

from specdec_lab.bench.honest import UNRELIABLE, caveat, impossible, tag


def test_agreeing_repeats_on_an_idle_machine_need_no_caveat():
    assert caveat([1.50, 1.52, 1.49], load=0.0, v=1.3, c=0.05, self_ratio=1.02) is None
    assert tag(None) == ""


def test_a_wide_spread_is_named_with_its_range():
    said = caveat({"a": [1.0, 1.01], "b": [0.5, 1.6, 1.0]}, load=0.0)
    assert said.startswith(UNRELIABLE) and "0.50 to 1.60" in said and tag(said)


def test_impossible_values_are_named_even_when_the_repeats_agree():
    said = caveat([1.0, 1.0], load=0.0, v=0.09)
    assert said.startswith(UNRELIABLE) and "v = 0.09 < 1" in said
    assert impossible(c=0.0) and impossible(self_ratio=1.27) and impossible(seconds=-1.0)
    assert impossible(v=1.0, c=0.1, self_ratio=0.9, seconds=0.2) == []


def test_a_busy_machine_is_named():
    said = caveat([1.0, 1.0], load=99.0)
    assert said.startswith(UNRELIABLE) and "load average" in said
