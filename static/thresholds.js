// The report card's threshold charts (Chart.js, vendored): for each scored validator, its
// alignment and false failure rate at every threshold tried, the picked one marked. Data come
// from the page as JSON (#threshold-data); the card is swapped by htmx every few seconds, so
// the charts are drawn again after each swap. Without JavaScript the picked threshold and its
// reason stay in the text above each chart. Colours come from the theme (app.js) and follow it.
(function () {
  "use strict";

  var charts = [];

  function percent(v) { return v === null ? "—" : Math.round(v * 100) + "%"; }

  function draw() {
    var source = document.getElementById("threshold-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var colours = window.concordChartTheme ? window.concordChartTheme()
      : { accent: "#34507a", warm: "#b3541e", pass: "#2e7d4f" };
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    document.querySelectorAll("canvas[data-threshold-chart]").forEach(function (canvas) {
      var curve = data[canvas.getAttribute("data-threshold-chart")];
      if (!curve) return;
      var labels = curve.thresholds.map(function (t) { return String(t); });
      var picked = curve.thresholds.map(function (t, i) { return t === curve.chosen ? curve.alignment[i] : null; });
      charts.push(new Chart(canvas, {
        type: "line",
        data: {
          labels: labels,
          datasets: [
            { label: "alignment", data: curve.alignment, borderColor: colours.accent, backgroundColor: colours.accent,
              borderWidth: 2, pointRadius: 2, spanGaps: true },
            { label: "false failure rate", data: curve.ffr, borderColor: colours.warm, backgroundColor: colours.warm,
              borderDash: [6, 4], borderWidth: 2, pointRadius: 2, spanGaps: true },
            { label: "threshold picked", data: picked, borderColor: colours.pass, backgroundColor: colours.pass,
              pointRadius: 6, pointStyle: "rectRot", showLine: false },
          ],
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            y: { min: 0, max: 1, ticks: { callback: percent } },
            x: { title: { display: true, text: "threshold (a score at or above it passes)" } },
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 18 } },
            tooltip: { callbacks: { label: function (item) { return item.dataset.label + ": " + percent(item.raw); } } },
          },
        },
      }));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
  document.body.addEventListener("htmx:afterSettle", draw);
  document.addEventListener("concord:theme", draw);
})();
