// The team page's chart: grades per day per annotator (Chart.js, vendored). Data come from
// the page as JSON (#team-chart-data). Tableau's ten colours: mid-tones that read on a light and
// a dark page alike; axes and grid take the theme's colours (app.js) and follow its changes.
(function () {
  "use strict";

  var COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#ff9da7", "#bab0ac"];

  function start() {
    var canvas = document.getElementById("team-chart");
    var source = document.getElementById("team-chart-data");
    if (!canvas || !source || typeof Chart === "undefined") return;
    if (window.concordChartTheme) window.concordChartTheme();
    if (canvas.chart) canvas.chart.destroy();
    var data = JSON.parse(source.textContent);
    var datasets = data.series.map(function (series, i) {
      var colour = COLOURS[i % COLOURS.length];
      return { label: series.name, data: series.counts, backgroundColor: colour, borderColor: colour };
    });
    canvas.chart = new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, title: { display: true, text: "day" } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "grades" } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  document.addEventListener("concord:theme", start);
})();
