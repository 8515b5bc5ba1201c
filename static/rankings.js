/* Rankings page charts: one horizontal bar per system (the estimate) with its 95% interval
   drawn as a whisker. Chart.js 4 has no error bars, so the small `intervalWhiskers` plugin
   draws them from each dataset's `intervals` ([low, high] per bar, or null).

   The data are the JSON blocks the page embeds (#ranking-single-data, #ranking-pairwise-data):
   the same bodies as GET /api/projects/{slug}/ranking/. After htmx swaps the single-grade
   section (another estimator), its chart is drawn again. Without JavaScript the tables below
   the charts carry the same numbers. */
(function () {
  "use strict";

  // The theme's colours (app.js), read when a chart is drawn: bars in the accent colour, the
  // whiskers in the text colour, so both read on a light and a dark page.
  function colours() {
    const theme = window.concordChartTheme ? window.concordChartTheme() : { accent: "#34507a", strong: "#1f2d3d" };
    return { bar: theme.accent + "8c", barBorder: theme.accent + "e6", whisker: theme.strong };
  }

  const intervalWhiskers = {
    id: "intervalWhiskers",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      const scale = chart.scales.x;
      chart.data.datasets.forEach((dataset, index) => {
        const meta = chart.getDatasetMeta(index);
        if (!dataset.intervals || meta.hidden) return;
        ctx.save();
        ctx.strokeStyle = colours().whisker;
        ctx.lineWidth = 1.5;
        meta.data.forEach((bar, i) => {
          const interval = dataset.intervals[i];
          if (!interval) return;
          const low = scale.getPixelForValue(interval[0]);
          const high = scale.getPixelForValue(interval[1]);
          const cap = Math.max(3, Math.min(7, (bar.height || 12) / 3));
          ctx.beginPath();
          ctx.moveTo(low, bar.y);
          ctx.lineTo(high, bar.y);
          ctx.moveTo(low, bar.y - cap);
          ctx.lineTo(low, bar.y + cap);
          ctx.moveTo(high, bar.y - cap);
          ctx.lineTo(high, bar.y + cap);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : value.toFixed(digits);
  }

  function draw(canvasId, rows, options) {
    const canvas = document.getElementById(canvasId);
    if (!canvas) return;
    const previous = Chart.getChart(canvas);
    if (previous) previous.destroy();
    const palette = colours();
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: rows.map((row) => row.label),
        datasets: [{
          label: options.label,
          data: rows.map((row) => row.value),
          intervals: rows.map((row) => row.interval),
          backgroundColor: palette.bar,
          borderColor: palette.barBorder,
          borderWidth: 1,
          barPercentage: 0.7,
        }],
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: {
            min: options.min,
            max: options.max,
            suggestedMin: options.suggestedMin,
            suggestedMax: options.suggestedMax,
            title: { display: true, text: options.axis },
          },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label(item) {
                const row = rows[item.dataIndex];
                const interval = row.interval
                  ? ` [${fmt(row.interval[0], options.digits)}, ${fmt(row.interval[1], options.digits)}]`
                  : "";
                return `${fmt(row.value, options.digits)}${interval} · n = ${row.n}`;
              },
            },
          },
        },
      },
      plugins: [intervalWhiskers],
    });
  }

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function bounds(rows) {
    const values = rows.flatMap((row) => (row.interval ? row.interval : [row.value]))
      .filter((value) => value !== null);
    return values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
  }

  function drawSingle() {
    const single = readJson("ranking-single-data");
    if (!single) return;
    draw("single-chart", single.systems.map((s) => ({
      label: s.system, value: s.estimate, interval: s.ci, n: s.n,
    })), { label: "Pass rate", axis: `pass rate (${single.estimator})`, min: 0, max: 1, digits: 3 });
    if (single.scale === "rating") {
      const rows = single.systems.map((s) => ({
        label: s.system, value: s.mean_score.estimate, interval: s.mean_score.ci, n: s.mean_score.n,
      }));
      const [low, high] = bounds(rows);
      const pad = (high - low) * 0.1 || 0.5;
      draw("score-chart", rows, {
        label: "Mean score", axis: "mean score", suggestedMin: Math.floor(low - pad),
        suggestedMax: Math.ceil(high + pad), digits: 2,
      });
    }
  }

  function drawPairwise() {
    const pairwise = readJson("ranking-pairwise-data");
    if (!pairwise) return;
    const rows = pairwise.bradley_terry.map((s) => ({
      label: s.system, value: s.score, interval: s.ci, n: s.n,
    }));
    const [low, high] = bounds(rows);
    // Symmetric around 0 (the average system), so strong and weak read alike.
    const reach = Math.ceil(Math.max(Math.abs(low), Math.abs(high), 0.5) * 2) / 2;
    draw("pairwise-chart", rows, {
      label: "Bradley–Terry strength", axis: "log-strength (0 = average)",
      suggestedMin: -reach, suggestedMax: reach, digits: 3,
    });
  }

  function drawAll() {
    if (typeof Chart === "undefined") return;
    drawSingle();
    drawPairwise();
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("concord:theme", drawAll);
  // After an outerHTML swap the old target is gone; redrawing the (cheap) chart is simpler
  // than finding out which element settled.
  document.addEventListener("htmx:afterSettle", () => {
    if (typeof Chart !== "undefined") drawSingle();
  });
})();
