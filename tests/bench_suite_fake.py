"""A benchmark suite for the harness tests: one case that works, one that raises."""


def works(quick, device, workdir):
    """a constant row"""
    return [{"metric": "answer", "unit": "", "value": 42.0, "baseline": "half", "baseline_value": 21.0, "ratio": 2.0,
             "better": "higher", "key": "discovery_speed_ratio"}]


def breaks(quick, device, workdir):
    """always raises"""
    raise RuntimeError("no such device")


CASES = {"works": works, "breaks": breaks}
