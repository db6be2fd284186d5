// Draws the dashboard's charts from the JSON embedded next to each table (the tables are
// the content; charts are an enhancement). Each drawn chart's container gets data-drawn,
// data-series and data-points so that what was drawn can be checked from the DOM.
(function () {
  "use strict";
  if (typeof uPlot === "undefined") { return; }
  var WIDTH = 900, HEIGHT = 280;
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

  function readData(name) {
    var node = document.getElementById(name + "-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function mark(el, labels, points) {
    el.setAttribute("data-drawn", "true");
    el.setAttribute("data-series", labels.join(","));
    el.setAttribute("data-points", String(points));
  }

  function pct(u, values) { return values.map(function (v) { return v == null ? "" : (v * 100).toFixed(1) + "%"; }); }

  function weights(el) {
    var rows = readData("weights");
    if (!rows || !rows.length) { return; }
    // Grouped bars: each series gets its own x slot next to the instrument's tick, with
    // nulls in the other series' slots (uPlot draws one x array for every series).
    var names = ["target", "before", "after"];
    var OFFSET = 0.27;
    var xs = [], columns = names.map(function () { return []; });
    rows.forEach(function (r, i) {
      names.forEach(function (name, s) {
        xs.push(i + (s - 1) * OFFSET);
        columns.forEach(function (col, c) { col.push(c === s ? r[name] : null); });
      });
    });
    var ticks = rows.map(function (_, i) { return i; });
    var series = [{}].concat(names.map(function (name, i) {
      return {
        label: name, stroke: COLORS[i], fill: COLORS[i] + "99",
        paths: uPlot.paths.bars({ size: [0.9, 60], align: 0 }),
        points: { show: false },
      };
    }));
    var data = [xs].concat(columns);
    new uPlot({
      width: WIDTH, height: HEIGHT, title: "Weights: target, before and after the last cycle",
      scales: { x: { time: false, range: [-0.6, rows.length - 0.4] } },
      axes: [
        { values: function (u, vals) { return vals.map(function (v) { return Number.isInteger(v) && rows[v] ? rows[v].key : ""; }); }, splits: function () { return ticks; } },
        { values: pct, size: 64 },
      ],
      series: series,
    }, data, el);
    el.setAttribute("data-keys", rows.map(function (r) { return r.key; }).join(","));
    el.setAttribute("data-target", rows.map(function (r) { return r.target; }).join(","));
    el.setAttribute("data-after", rows.map(function (r) { return r.after; }).join(","));
    mark(el, names, rows.length);
  }

  function lines(el, name, title, labels, columns, valueFormat) {
    var d = readData(name);
    if (!d || !d.t || !d.t.length) { return; }
    var series = [{}].concat(labels.map(function (label, i) {
      return { label: label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true };
    }));
    new uPlot({
      width: WIDTH, height: HEIGHT, title: title,
      axes: [{}, valueFormat ? { values: valueFormat, size: 64 } : { size: 72 }],
      series: series,
    }, [d.t].concat(columns(d)), el);
    mark(el, labels, d.t.length);
  }

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var kind = el.getAttribute("data-chart");
    if (kind === "weights") { weights(el); }
    if (kind === "drift") {
      var d = readData("drift"); var keys = d ? Object.keys(d.series) : [];
      lines(el, "drift", "Drift per instrument (weight points)", keys, function (x) { return keys.map(function (k) { return x.series[k]; }); }, pct);
    }
    if (kind === "costs") {
      lines(el, "costs", "Cumulative commission and slippage", ["commission", "slippage"], function (x) { return [x.commission, x.slippage]; });
    }
    if (kind === "cash_nav") {
      lines(el, "cash_nav", "Cash and NAV", ["nav", "cash"], function (x) { return [x.nav, x.cash]; });
    }
  });
})();
