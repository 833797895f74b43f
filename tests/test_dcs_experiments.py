"""The DCS experiments (experiments/dcs/lasso_path.py, digits_compression.py): each runner's smoke config through
the registry, with checks that can fail."""

from .smoke import smoke


def smoke_run(name: str, tmp_path) -> dict:
    return smoke(name, tmp_path, "dcs")


def test_lasso_dcs_matches_sklearn_and_the_masked_block_vanishes_exactly_above_the_critical_alpha(tmp_path):
    doc = smoke_run("dcs_lasso", tmp_path)
    res, s = doc["results"][0], doc["summary"]
    rows = res["path"]["rows"]
    assert len(rows) == doc["config"]["n_alphas"]
    for r in rows:  # the smoke grid needs no sign change from the OLS start (the balanced start cannot make one)
        assert r["sign_changes_needed"] == 0
        for v in ("dcs", "balanced"):
            assert abs(r[v]["relative_gap"]) < 1e-5 and r[v]["support_match"], (r["alpha"], v)
    assert rows[-1]["nonzero_sklearn"] == rows[-1]["dcs"]["nonzero"] == 0  # α_max: every coefficient zero
    assert rows[0]["nonzero_sklearn"] > rows[-2]["nonzero_sklearn"] > 0
    crit = {r["factor"]: r for r in res["critical"]["rows"]}
    assert set(crit) == {0.8, 1.2}
    assert crit[1.2]["masked_max"] < 1e-10 and crit[1.2]["masked_nonzero"] == 0  # D5 / P9
    assert crit[0.8]["masked_max"] > 1e-3
    assert s["critical"]["1.2"]["kkt_max"] < 1e-5
    runs = res["stochastic"]["runs"]
    assert [(r["optimizer"], r["batch"], r["schedule"]) for r in runs] == [("sgd", None, "constant"),
                                                                           ("adam", 20, "cosine")]
    for r in runs:  # any torch.optim optimizer moves toward the lasso optimum (not to it in the smoke's 300 steps)
        gaps = [p["gap"] for p in r["trace"]]
        assert gaps[-1] < gaps[0] and gaps[-1] < 0.05


def test_digits_materialized_model_is_the_dcs_model_and_sparsity_grows_with_alpha(tmp_path):
    doc = smoke_run("dcs_digits", tmp_path)
    res, cfg = doc["results"][0], doc["config"]
    assert res["baseline"]["zero_fraction"] == 0.0  # weight decay gives no exact zeros
    arms = [a for kind in ("sparse", "balanced", "group") for a in res[kind]]
    assert len(arms) == len(cfg["sparse_alphas"]) + len(cfg["balanced_alphas"]) + len(cfg["group_alphas"])
    for a in arms:
        assert a["plain_module"]
        assert a["materialized_test_acc"] == a["test_acc"] and a["acc_difference"] == 0.0
        assert a["identical_predictions"] == a["test_size"] == 449
        assert a["max_logit_difference"] < 1e-3
        assert abs(a["prune"]["zero_fraction"] - a["zero_fraction"]) < 1e-3  # pruning matched the sparsity
    sparse = res["sparse"]
    assert sparse[0]["zero_fraction"] < sparse[1]["zero_fraction"]
    assert sparse[1]["zero_fraction"] > 0.3  # DCS makes exact zeros; weight decay above makes none
    for a in res["balanced"]:  # the balanced start keeps every pair on w = ±u: no weight changes its sign
        assert a["sign_flips"] == 0
    assert sparse[0]["sign_flips"] > 0 and res["baseline"]["sign_flips"] > 0  # the default (spread) start: free
    assert doc["summary"]["sparse"][1]["max_abs_acc_difference"] == 0.0
