// The team page's chart: grades per day per annotator (Chart.js, vendored). Data come from
// the page as JSON (#team-chart-data).
(function () {
  "use strict";

  var COLOURS = ["#34507a", "#6b3fa0", "#2f7d5b", "#b5562b", "#8a6d1d", "#a0305a", "#3b7f99", "#555"];

  function start() {
    var canvas = document.getElementById("team-chart");
    var source = document.getElementById("team-chart-data");
    if (!canvas || !source || typeof Chart === "undefined") return;
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
})();
