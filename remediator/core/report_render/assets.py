"""The HTML report's stylesheet and script, inlined into every page (no file, CDN or web font is ever
fetched).

Kept apart from :mod:`remediator.core.report_render.html` so the markup reads on its own. The page's
Content-Security-Policy allows exactly these two texts by their SHA-256 hashes, and nothing else: an injected
``<script>``, an ``onerror=`` attribute or a ``style=`` attribute would not run even if escaping ever failed.
"""

from __future__ import annotations

from typing import Final

from remediator.core.report_document import STATES

STATE_COLOURS: Final = {
    "protected": "#1a7f37",
    "installing": "#0969da",
    "waiting": "#bf8700",
    "blocked": "#cf222e",
    "gaveUp": "#8250df",
    "notStarted": "#6e7781",
    "notSelected": "#d0d7de",
}
"""One colour per state, told apart by hue and lightness (green, blue, amber, red, purple, greys)."""

STATE_TINTS: Final = {
    "protected": "#dafbe1",
    "installing": "#ddf4ff",
    "waiting": "#fff8c5",
    "blocked": "#ffebe9",
    "gaveUp": "#fbefff",
    "notStarted": "#eaeef2",
    "notSelected": "#f6f8fa",
}
"""Light backgrounds for the state badges in tables."""

assert set(STATE_COLOURS) == set(STATES) == set(STATE_TINTS)

_STATE_RULES = "\n".join(
    f".s-{state}{{--c:{STATE_COLOURS[state]};--t:{STATE_TINTS[state]}}}" for state in STATES
)

CSS: Final = (
    """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;--accent:#0969da;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans",Arial,sans-serif;
font-size:14px;line-height:1.45;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0}
header.masthead{background:#0d2538;color:#fff;padding:20px 24px 18px}
header.masthead .inner{max-width:1432px;margin:0 auto}
header.masthead h1{margin:0 0 4px;font-size:22px;font-weight:600;letter-spacing:.2px}
header.masthead .meta{margin:0;color:#c9d6e2;font-size:13px}
header.masthead .meta code{color:#fff;background:rgba(255,255,255,.12);padding:1px 5px;border-radius:4px}
header.masthead .headline{margin:10px 0 0;font-size:15px;color:#fff}
main{max-width:1480px;margin:0 auto;padding:20px 24px 40px}
section{margin:0 0 20px}
h2{font-size:16px;font-weight:600;margin:0 0 10px}
h2 .count{color:var(--muted);font-weight:400}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:0}
.card p.note{color:var(--muted);margin:-4px 0 10px;font-size:12.5px}
.kpis{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:12px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;
border-top:4px solid #8c959f}
.kpi.k-protected{border-top-color:#1a7f37}.kpi.k-ready{border-top-color:#2da44e}
.kpi.k-human{border-top-color:#cf222e}.kpi.k-selected{border-top-color:#0969da}
.kpi .kpi-label{display:block;color:var(--muted);font-size:12.5px}
.kpi .kpi-value{display:block;font-size:28px;font-weight:600;font-variant-numeric:tabular-nums}
.kpi .kpi-sub{display:block;color:var(--muted);font-size:12.5px}
.charts{display:grid;grid-template-columns:minmax(300px,1fr) 2fr;gap:12px}
.charts .wide{grid-column:1/-1}
.charts>*,.two>*{min-width:0}
.donut-wrap{display:flex;gap:18px;align-items:center;flex-wrap:wrap}
svg.donut{width:200px;height:200px;flex:none}
.donut-ring{stroke:#eaeef2}
.donut-seg{stroke:var(--c)}
.donut-big{font-size:8px;font-weight:600;fill:var(--fg)}
.donut-small{font-size:3.4px;fill:var(--muted)}
ul.legend{list-style:none;margin:0;padding:0;min-width:180px;flex:1}
ul.legend li{display:grid;grid-template-columns:14px 1fr auto 3.5em;gap:8px;align-items:center;padding:3px 0;
border-bottom:1px solid #eef1f4}
ul.legend .pct{color:var(--muted);text-align:right;font-variant-numeric:tabular-nums}
ul.legend b{font-variant-numeric:tabular-nums;text-align:right}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;background:var(--c)}
.keys{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 10px;padding:0;list-style:none;color:var(--muted);
font-size:12.5px}
.keys li{display:flex;gap:5px;align-items:center}
.bars{display:grid;grid-template-columns:minmax(110px,15rem) 1fr auto;gap:6px 12px;align-items:center}
.bar-label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
svg.bar{width:100%;height:18px;display:block;border-radius:3px;background:#eaeef2}
svg.bar rect{fill:var(--c)}
.bar-total{color:var(--muted);font-size:12.5px;white-space:nowrap;font-variant-numeric:tabular-nums;min-width:12em}
.bar-total b{color:var(--fg)}
table{border-collapse:collapse;width:100%;font-size:12.5px}
.table-wrap{overflow:auto;max-height:none}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eef1f4;vertical-align:top}
thead th{position:sticky;top:0;background:#f6f8fa;border-bottom:1px solid var(--line);font-weight:600;
white-space:nowrap;z-index:1}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fbfcfd}
tbody tr:hover{background:#f1f6fd}
th button{all:unset;cursor:pointer;display:inline-flex;gap:4px;align-items:center}
th button:focus-visible{outline:2px solid var(--accent);outline-offset:2px;border-radius:2px}
th button::after{content:"\\2195";color:#afb8c1;font-size:11px}
th[aria-sort=ascending] button::after{content:"\\25B2";color:var(--accent)}
th[aria-sort=descending] button::after{content:"\\25BC";color:var(--accent)}
.badge{display:inline-flex;align-items:center;gap:5px;padding:1px 8px 1px 6px;border-radius:999px;
background:var(--t);color:var(--fg);white-space:nowrap;font-size:12px;border:1px solid rgba(31,35,40,.08)}
.badge::before{content:"";width:8px;height:8px;border-radius:50%;background:var(--c)}
code,.mono{font-family:ui-monospace,SFMono-Regular,"Cascadia Mono","DejaVu Sans Mono",Menlo,monospace;
font-size:12px}
.muted{color:var(--muted)}
td.name{white-space:nowrap}
td.name .cluster-name{display:block;font-weight:600}
td.name .rg{display:block;color:var(--muted);font-size:12px}
td.remedy{min-width:20em}
td.why{max-width:30em}
td.nowrap{white-space:nowrap}
td.next{min-width:14em}
td.small-why{max-width:14em}
.lines>div+div{margin-top:3px}
.chart-sub{margin-top:18px}
.toolbar{display:flex;gap:10px;align-items:center;margin:0 0 10px;flex-wrap:wrap}
.toolbar input,.toolbar select{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:6px;
background:#fff}
.toolbar input{min-width:24em}
.toolbar .shown{color:var(--muted);margin-left:auto}
.two{display:grid;grid-template-columns:1fr;gap:12px}
.empty{color:var(--muted);font-style:italic;margin:0}
footer{max-width:1480px;margin:0 auto;padding:0 24px 32px;color:var(--muted);font-size:12.5px}
footer dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 0}
footer dt{font-weight:600;color:var(--fg)}
footer dd{margin:0}
@media (max-width:900px){.kpis{grid-template-columns:repeat(2,minmax(0,1fr))}
.charts,.two{grid-template-columns:1fr}main{padding:16px}}
@media print{body{background:#fff}.toolbar{display:none}thead th{position:static}
.card,.kpi{break-inside:avoid}
header.masthead{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""
    + _STATE_RULES
    + "\n"
)

JS: Final = """
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function valueOf(row, index) {
    var cell = row.cells[index];
    var explicit = cell.getAttribute("data-sort");
    return explicit !== null ? explicit : cell.textContent.trim();
  }
  function compare(a, b) {
    var x = Number(a), y = Number(b);
    if (a !== "" && b !== "" && !isNaN(x) && !isNaN(y)) { return x - y; }
    return collator.compare(a, b);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var headers = table.tHead.rows[0].cells;
    var body = table.tBodies[0];
    Array.prototype.forEach.call(body.rows, function (row, i) { row.setAttribute("data-order", String(i)); });
    Array.prototype.forEach.call(headers, function (th, index) {
      var button = th.querySelector("button");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(valueOf(r1, index), valueOf(r2, index));
          if (c !== 0) { return ascending ? c : -c; }
          return Number(r1.getAttribute("data-order")) - Number(r2.getAttribute("data-order"));
        });
        var fragment = document.createDocumentFragment();
        rows.forEach(function (row) { fragment.appendChild(row); });
        body.appendChild(fragment);
      });
    });
  });
  var filter = document.getElementById("cluster-filter");
  var stateFilter = document.getElementById("state-filter");
  var shown = document.getElementById("cluster-shown");
  var table = document.getElementById("cluster-table");
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var state = stateFilter.value;
    var count = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      var visible = (!state || row.getAttribute("data-state") === state) &&
        words.every(function (word) { return text.indexOf(word) !== -1; });
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = count === table.tBodies[0].rows.length ?
      "Showing all " + count : "Showing " + count + " of " + table.tBodies[0].rows.length;
  }
  if (filter && stateFilter && shown && table) {
    filter.addEventListener("input", applyFilter);
    stateFilter.addEventListener("change", applyFilter);
    applyFilter();
  }
})();
"""
