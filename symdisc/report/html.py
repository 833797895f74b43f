"""One self-contained HTML page: sections of text, tables and figures, every figure a PNG embedded as base64 (no
file beside the page, no network).  Each image records whether it decoded (``data-rendered``), so a headless
browser's DOM dump shows that every figure rendered."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from symdisc.io import atomic_write

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2327}h1{font-size:1.7em;margin-bottom:.2em}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.sub{color:#667;margin-top:0}table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccd;padding:.3em .6em;text-align:left}th{background:#f3f4f7}
figure{margin:1em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #eee}figcaption{color:#556;font-size:.85em}
.kv td:first-child{font-weight:600}.ok{color:#137333}.bad{color:#b3261e}
"""
MARK = """<script>
window.addEventListener('load',function(){document.querySelectorAll('img').forEach(function(i){
i.setAttribute('data-rendered',(i.complete&&i.naturalWidth>0)?'true':'false');});
document.body.setAttribute('data-figures',document.querySelectorAll('img[data-rendered=true]').length);});
</script>"""


def esc(x) -> str:
    return html.escape(str(x))


def fmt(x) -> str:
    """A cell: floats in 3 significant digits (scientific when small or large), None as an en dash."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 or x == 0 else f"{x:.2e}"
    return str(x)


def png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def figure(data: bytes, caption: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def key_values(pairs: dict) -> str:
    return '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{esc(fmt(v))}</td></tr>"
                                          for k, v in pairs.items()) + "</table>"


def page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{esc(h)}</h2>{content}" for h, content in sections)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
            f'<body><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p>{body}{MARK}</body></html>')


def write(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
