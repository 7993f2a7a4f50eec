"""The page around the sections: one self-contained HTML document (inline CSS, JS and SVG).

A Content-Security-Policy meta forbids every load from anywhere (default-src 'none'); only the inline style and
script of this page run. The page opens offline, from a mail attachment or a change ticket, and asks no server.
"""

from __future__ import annotations

from html import escape

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bg:#ffffff; --panel:#f6f7f9;
  --fail:#c62828; --warn:#b26a00; --pass:#2e7d32; --unknown:#6a4c93; --info:#1565c0; --na:#7f8896; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; }
header.top { background: #1d2330; color: #fff; padding: 14px 24px; }
header.top h1 { margin: 0; font-size: 20px; }
header.top .sub { color: #c5cad6; font-size: 12px; }
nav { padding: 8px 24px; background: var(--panel); border-bottom: 1px solid var(--line); font-size: 13px; }
nav a { margin-right: 14px; color: var(--info); text-decoration: none; }
main { padding: 8px 24px 40px; max-width: 1200px; }
section.part { border-top: 2px solid var(--line); margin-top: 22px; padding-top: 4px; }
h2 { font-size: 18px; margin: 10px 0 6px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.absent { color: var(--muted); font-style: italic; }
.note { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
table.fixed { table-layout: fixed; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Consolas, monospace; }
td code { white-space: pre-wrap; overflow-wrap: anywhere; }
td { overflow-wrap: break-word; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 8px; overflow-x: auto; white-space: pre-wrap; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; color: #fff; background: var(--na);
  font-weight: 600; font-size: 12px;
  text-transform: uppercase; overflow-wrap: normal; }
.v-ready, .s-pass, .c-better { background: var(--pass); }
.v-partial, .s-warn, .c-mixed { background: var(--warn); }
.v-not-ready, .v-bottleneck, .s-fail, .c-worse, .v-unreachable, .v-failed, .v-blocked { background: var(--fail); }
.v-planned, .v-collected, .v-nothing-to-do { background: var(--pass); }
.v-unknown, .s-unknown, .v-insufficient-data { background: var(--unknown); }
.s-info, .v-ok, .c-same, .c-within-noise { background: var(--info); }
.s-not-applicable, .v-idle, .c-none { background: var(--na); }
.verdict { font-size: 16px; margin: 6px 0; }
.fixes li { margin-bottom: 6px; }
.filters button { font: inherit; font-size: 12px; margin: 0 4px 4px 0; padding: 2px 10px; border: 1px solid var(--line);
  background: #fff; border-radius: 12px; cursor: pointer; }
.filters button.on { background: var(--fg); color: #fff; }
tr.hidden { display: none; }
.ev { color: var(--muted); font-size: 12px; }
.warnbox { border-left: 4px solid var(--fail); background: #fdecea; padding: 8px 12px; margin: 8px 0; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 6px 0 12px; }
svg .ct { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg .tick, svg .legend, svg .mlabel { font-size: 11px; fill: var(--muted); }
svg .axis { font-size: 12px; fill: var(--fg); }
svg .grid { stroke: #eceef2; stroke-width: 1; }
svg .frame { fill: none; stroke: var(--line); }
svg .line { fill: none; stroke-width: 1.6; }
svg .shade { fill: rgba(198, 40, 40, 0.16); }
svg .marker { stroke: var(--fg); stroke-dasharray: 4 3; }
svg .nodata { font-size: 13px; fill: var(--muted); text-anchor: middle; }
#js-errors:empty { display: none; }
#js-errors { color: var(--fail); }
@media print { nav, .filters { display: none; } tr.hidden { display: table-row; } }
"""

JS = """
(function () {
  var errs = document.getElementById('js-errors');
  window.addEventListener('error', function (e) { errs.textContent += 'script error: ' + e.message + '\\n'; });
  document.querySelectorAll('.filters').forEach(function (bar) {
    var table = document.getElementById(bar.getAttribute('data-table'));
    bar.querySelectorAll('button').forEach(function (b) {
      b.addEventListener('click', function () {
        var want = b.getAttribute('data-status');
        bar.querySelectorAll('button').forEach(function (o) { o.classList.toggle('on', o === b); });
        table.querySelectorAll('tbody tr').forEach(function (r) {
          r.classList.toggle('hidden', want !== 'all' && r.getAttribute('data-status') !== want);
        });
      });
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
"""


def page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str) -> str:
    """The whole document: head with the CSP, the header, a table of contents, the sections, the script."""
    links = "".join(f'<a href="#{escape(anchor)}">{escape(label)}</a>' for anchor, label in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f'<body><header class="top"><h1>{escape(title)}</h1><div class="sub">{escape(subtitle)}</div></header>'
        f'<nav>{links}</nav><main><pre id="js-errors"></pre>{body}</main>'
        f"<script>{JS}</script></body></html>\n"
    )
