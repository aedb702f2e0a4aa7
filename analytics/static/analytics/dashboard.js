/* The analytics dashboard's charts and sortable tables (no inline script: CSP). */
(function () {
  "use strict";
  var node = document.getElementById("dashboard-data");
  if (!node || !window.echarts) { return; }
  var data = JSON.parse(node.textContent);
  // series names and funnel steps in the page's language (json_script "dashboard-labels")
  var labelsNode = document.getElementById("dashboard-labels");
  var labels = labelsNode ? JSON.parse(labelsNode.textContent) : {};
  function t(key, fallback) { return labels[key] || fallback; }

  function chart(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var instance = echarts.init(el, null, { renderer: "canvas" });
    instance.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis" } }, option));
    window.addEventListener("resize", function () { instance.resize(); });
  }
  function pick(rows, key) { return rows.map(function (r) { return r[key]; }); }

  chart("chart-series", {
    legend: { data: [t("clicks", "clicks"), t("activations", "activations"), t("attribution_rate", "attribution rate")] },
    grid: { left: 50, right: 50, bottom: 60 },
    xAxis: { type: "category", data: pick(data.series, "at") },
    yAxis: [{ type: "value" }, { type: "value", axisLabel: { formatter: function (v) { return (v * 100).toFixed(0) + "%"; } } }],
    dataZoom: [{ type: "slider" }],
    series: [
      { name: t("clicks", "clicks"), type: "line", data: pick(data.series, "clicks") },
      { name: t("activations", "activations"), type: "line", data: pick(data.series, "activations") },
      { name: t("attribution_rate", "attribution rate"), type: "line", yAxisIndex: 1, data: pick(data.series, "attribution_rate") }
    ]
  });
  chart("chart-funnel", {
    tooltip: { trigger: "item" },
    series: [{ type: "funnel", sort: "none", label: { formatter: "{b}: {c}" },
      data: data.funnel.map(function (s) { return { name: t(s.step, s.step), value: s.value }; }) }]
  });
  chart("chart-ctit", {
    xAxis: { type: "category", data: pick(data.ctit, "bucket") },
    yAxis: { type: "value" },
    series: [{ type: "bar", name: t("attributed_installs", "attributed installs"), data: pick(data.ctit, "value") }]
  });
  chart("chart-os", {
    tooltip: { trigger: "item" },
    series: [{ type: "pie", radius: "65%", data: data.os.map(function (o) { return { name: o.os, value: o.clicks }; }) }]
  });
  var top = data.links.slice(0, 15).reverse();
  chart("chart-links", {
    grid: { left: 160 },
    xAxis: { type: "value" },
    yAxis: { type: "category", data: top.map(function (l) { return l.link_id + " · " + l.name; }) },
    series: [
      { type: "bar", name: t("clicks", "clicks"), data: pick(top, "clicks") },
      { type: "bar", name: t("attributed", "attributed"), data: pick(top, "attributed") }
    ]
  });
  var acts = data.campaigns.slice(0, 15);
  chart("chart-campaigns", {
    legend: { data: [t("visitors", "visitors"), t("claims", "claims"), t("orders_paid", "orders paid"), t("revenue_yuan", "revenue (yuan)")] },
    xAxis: { type: "category", data: pick(acts, "name") },
    yAxis: [{ type: "value" }, { type: "value" }],
    series: [
      { type: "bar", name: t("visitors", "visitors"), data: pick(acts, "unique_visitors") },
      { type: "bar", name: t("claims", "claims"), data: pick(acts, "claims") },
      { type: "bar", name: t("orders_paid", "orders paid"), data: pick(acts, "orders_paid") },
      { type: "line", name: t("revenue_yuan", "revenue (yuan)"), yAxisIndex: 1, data: acts.map(function (a) { return a.revenue_fen / 100; }) }
    ]
  });

  // sortable tables: click a heading, again to reverse
  Array.prototype.forEach.call(document.querySelectorAll("table.hd-sortable"), function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.addEventListener("click", function () {
        var column = Number(th.dataset.sort);
        var descending = th.getAttribute("aria-sort") !== "descending";
        table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > column; });
        rows.sort(function (a, b) {
          var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
          var nx = parseFloat(x), ny = parseFloat(y);
          var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return descending ? -order : order;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
