// The review page's agreement chart (Chart.js, vendored). Data come from the page as JSON
// (#agreement-data); the select switches the criterion shown. Colours come from the theme
// (app.js) and follow it.
(function () {
  "use strict";

  function start() {
    var canvas = document.getElementById("agreement-chart");
    var source = document.getElementById("agreement-data");
    if (!canvas || !source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var select = document.getElementById("chart-target");
    var chart = null;

    function draw(index) {
      var colours = window.concordChartTheme ? window.concordChartTheme()
        : { accent: "#34507a", violet: "#6b3fa0" };
      var target = data.targets[index] || data.targets[0];
      var datasets = [{
        label: "annotators agree with each other",
        data: target.annotators,
        borderColor: colours.accent, backgroundColor: colours.accent + "1f",  // 12% opaque
        borderWidth: 3, pointRadius: 4, spanGaps: true, cubicInterpolationMode: "monotone", fill: true,
      }];
      if (target.validator_name) {
        datasets.push({
          label: "chosen validator (" + target.validator_name + ") agrees with annotators",
          data: target.validator,
          borderColor: colours.violet, backgroundColor: colours.violet, borderDash: [6, 4],
          borderWidth: 3, pointRadius: 4, spanGaps: true, cubicInterpolationMode: "monotone",
        });
      }
      if (chart) chart.destroy();
      chart = new Chart(canvas, {
        type: "line",
        data: { labels: data.labels, datasets: datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            y: { min: 0, max: 1, ticks: { callback: function (v) { return Math.round(v * 100) + "%"; } } },
            x: { title: { display: true, text: "grades, in the order they were given" } },
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 18, font: { size: 13 } } },
            tooltip: {
              callbacks: {
                title: function (items) {
                  var i = items[0].dataIndex;
                  return "grades " + data.labels[i] + " (until " + data.dates[i] + ")";
                },
                label: function (item) {
                  return item.dataset.label + ": " + (item.raw === null ? "—" : Math.round(item.raw * 100) + "%");
                },
              },
            },
          },
        },
      });
    }

    draw(0);
    if (select) select.addEventListener("change", function () { draw(Number(select.value)); });
    document.addEventListener("concord:theme", function () { draw(select ? Number(select.value) : 0); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
