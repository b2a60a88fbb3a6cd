"""HTML building blocks of `kerasae report`: one offline page, escaped, images inlined.

Everything the page shows goes through `escape`/`text`/`number`, figures are PNG data URIs,
and the Content-Security-Policy lets the page load nothing from anywhere (no scripts, no
remote images): the same page whether opened from a mail attachment or from the run folder.
"""

import base64
import html
import json

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;
  background:#fff;max-width:1180px;margin:24px auto;padding:0 20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
  border-bottom:1px solid #d8dce4;padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:#5b6475;margin:0 0 12px}.note{color:#5b6475;font-style:italic}
table{border-collapse:collapse;margin:4px 0 10px}
th,td{border:1px solid #d8dce4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
.grid{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0}
figcaption{color:#5b6475;font-size:12px}img{max-width:100%;height:auto}
.ok{color:#18794e}.bad{color:#c4320a;font-weight:600}
"""
# Nothing may load from elsewhere: images are data URIs, the style is inline, no script.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def escape(text):
    return html.escape(str(text), quote=True)


def text(value):
    """Escaped text of a scalar; '-' for a missing one."""
    return "-" if value is None else escape(value)


def shown(value):
    if isinstance(value, (dict, list)):
        return f"<code>{escape(json.dumps(value, sort_keys=True))}</code>"
    return text(value)


def number(value, fmt=".6g"):
    try:
        return escape(format(float(value), fmt))
    except (TypeError, ValueError):
        return text(value)


def data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(uri, caption, alt):
    return (
        f'<figure><img src="{uri}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}: {escape(alt)}</figcaption></figure>"
    )


def section(anchor, heading, content):
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>\n{content}\n</section>'


def table(rows, header=None, numeric=False):
    """A table of already escaped cells; without `header`, each row's first cell heads it."""
    head = ("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>") if header else ""
    first_tag = "th" if header is None else "td"
    cls = ' class="num"' if numeric else ""
    body = "".join(
        f"<tr><{first_tag}>{first}</{first_tag}>"
        + "".join(f"<td{cls}>{c}</td>" for c in rest)
        + "</tr>"
        for first, *rest in rows
    )
    return f"<table>{head}{body}</table>"
