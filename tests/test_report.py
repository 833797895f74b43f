"""``symdisc report``: one self-contained HTML page per run kind (discovery, teleport, RR, DCS), rendered in a real
headless browser (Debian's chromium) with every figure decoded; bad input is one line and writes nothing."""

import json
import os
import re
import shutil
import subprocess

import pytest

from symdisc.cli.main import main
from symdisc.report import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs chromium (.ci/run): there the browser check must run, elsewhere it skips without one
needs_browser = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no chromium")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One small run of each kind, made through the CLI as a user would."""
    d = tmp_path_factory.mktemp("runs")
    made = {"discovery": d / "disc", "teleport": d / "tp.json", "rr": d / "rr", "dcs": d / "dcs"}
    argvs = [["discover", "linear-scalar", "--steps", "20", "--verify-draws", "1", "--out", str(made["discovery"])],
             ["teleport", "mlp", "--act", "relu", "--dims", "3,3,1", "--symmetry", "known", "--steps", "30",
              "--teleport-at", "5,20", "--out", str(made["teleport"])],
             ["rr", "toy2d", "--out", str(made["rr"])],
             ["dcs", "mlp", "--act", "relu", "--dims", "3,8,1", "--steps", "50", "--out", str(made["dcs"])]]
    for argv in argvs:
        assert main(argv) == 0, argv
    return made


def render(path):
    """The DOM chromium builds after the page's load event: every <img> marked decoded or not."""
    assert CHROMIUM, "chromium is required here (CI installs Debian's chromium)"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                        "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


EXPECTED = {"discovery": 6, "teleport": 1, "rr": 1, "dcs": 1}  # discovery: bars, fields, 3 run figures, training


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_report_is_self_contained(runs, tmp_path, capsys, kind):
    out = tmp_path / f"{kind}.html"
    code, stdout, err = run(capsys, "report", str(runs[kind]), "--out", str(out), "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["kind"] == kind and info["figures"] == EXPECTED[kind] and out.stat().st_size == info["bytes"]
    text = out.read_text()
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(srcs) == EXPECTED[kind] and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(?!data:)[^"#]', text)  # nothing loaded from beside the page or a network
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # one file, no temporary left


@needs_browser
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_report_renders_every_figure_in_chromium(runs, tmp_path, kind):
    out = tmp_path / f"{kind}.html"
    report(runs[kind], out)
    dom = render(out)
    assert dom.count('data-rendered="true"') == EXPECTED[kind] and 'data-rendered="false"' not in dom
    assert f'data-figures="{EXPECTED[kind]}"' in dom


def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    for argv, fragment in [([str(tmp_path), "--out", str(out)], "not a run directory"),
                           ([str(tmp_path / "none"), "--out", str(out)], "no run at"),
                           ([str(runs["rr"]), "--out", str(tmp_path / "r.txt")], ".html"),
                           ([str(runs["rr"] / "rr_run.json"), "--out", str(out)], "not a teleport result")]:
        code, _, err = run(capsys, "report", *argv)
        assert code == 2 and fragment in err and err.count("\n") == 1, (argv, err)
    assert list(tmp_path.iterdir()) == []
    assert run(capsys, "report", str(runs["rr"]), "--out", str(out))[0] == 0
    code, _, err = run(capsys, "report", str(runs["rr"]), "--out", str(out))
    assert code == 2 and "exists" in err  # never overwritten silently
    assert run(capsys, "report", str(runs["rr"]), "--out", str(out), "--force")[0] == 0


def test_a_corrupted_run_file_is_one_line(runs, tmp_path, capsys):
    bad = tmp_path / "rr"
    shutil.copytree(runs["rr"], bad)
    (bad / "archive.json").write_text((bad / "archive.json").read_text()[:50])
    code, _, err = run(capsys, "report", str(bad), "--out", str(tmp_path / "r.html"))
    assert code == 3 and "corrupted or truncated" in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
