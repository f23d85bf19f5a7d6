/* OpenLane Portal — the metrics section of a submission: the Pareto plot (Chart.js 4 scatter)
 * and the metrics table's column chooser.
 * Plot data comes from the JSON in the data-chart attribute of <template id="chart-data">
 * inside [data-pareto] (parsed, never evaluated; htmx would drop a <script> island when it
 * swaps the section in); changing an axis fetches data-results-url?x=..&y=.., whose
 * Pareto front and best tasks are computed by the server (portal.results.pareto). Clicking a
 * point opens that task in the task panel.
 * [data-column-chooser] holds one checkbox per column (input[data-column=NAME]); the table's
 * cells of that column carry data-col=NAME. What the designer ticks is remembered in this
 * browser (localStorage) for every submission; columns never chosen keep the page's default.
 */
(function () {
  "use strict";

  var COLOURS = {
    others: "rgba(107, 118, 134, 0.55)",
    front: "#0e7c86",
    bestX: "#d9480f",
    bestY: "#7048e8",
  };

  function label(data, name) {
    var field = data.fields[name];
    if (!field) return name;
    return field.unit ? field.label + " [" + field.unit + "]" : field.label;
  }

  function shortLabel(data, name) {
    var field = data.fields[name];
    return field ? field.label : name;
  }

  function datasets(data) {
    var x = data.x;
    var y = data.y;
    var others = [];
    var front = [];
    var bestX = [];
    var bestY = [];
    data.rows.forEach(function (row) {
      var px = row.metrics[x];
      var py = row.metrics[y];
      if (typeof px !== "number" || typeof py !== "number") return;
      var point = { x: px, y: py, index: row.index, params: row.params || {} };
      (row.pareto ? front : others).push(point);
      if (data.best[x] === row.index) bestX.push(point);
      if (data.best[y] === row.index) bestY.push(point);
    });
    front.sort(function (a, b) { return a.x - b.x || a.y - b.y; });
    return [
      {
        label: "Best " + shortLabel(data, x).toLowerCase(),
        data: bestX, pointStyle: "triangle", pointRadius: 12, pointHoverRadius: 13,
        borderColor: COLOURS.bestX, backgroundColor: "rgba(0, 0, 0, 0)", borderWidth: 2,
        order: 0,
      },
      {
        label: "Best " + shortLabel(data, y).toLowerCase(),
        data: bestY, pointStyle: "rectRot", pointRadius: 12, pointHoverRadius: 13,
        borderColor: COLOURS.bestY, backgroundColor: "rgba(0, 0, 0, 0)", borderWidth: 2,
        order: 0,
      },
      {
        label: "Pareto front", data: front, showLine: true, pointRadius: 6,
        pointHoverRadius: 8, borderColor: COLOURS.front, backgroundColor: COLOURS.front,
        borderWidth: 2, order: 1,
      },
      {
        label: "Other tasks", data: others, pointRadius: 4, pointHoverRadius: 6,
        backgroundColor: COLOURS.others, borderColor: COLOURS.others, order: 2,
      },
    ];
  }

  function options(data, box) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { type: "linear", title: { display: true, text: label(data, data.x) } },
        y: { type: "linear", title: { display: true, text: label(data, data.y) } },
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label: function (item) {
              var p = item.raw;
              var params = Object.keys(p.params).sort().map(function (k) {
                return k + "=" + p.params[k];
              }).join(" ");
              return "Task " + p.index + ": " + p.x + ", " + p.y + (params ? "  (" + params + ")" : "");
            },
          },
        },
      },
      onClick: function (_event, elements, chart) {
        if (!elements.length || !window.htmx) return;
        var point = chart.data.datasets[elements[0].datasetIndex].data[elements[0].index];
        var base = box.getAttribute("data-task-base");
        window.htmx.ajax("GET", base + "/tasks/" + point.index, {
          target: "#task-panel", swap: "outerHTML",
        });
      },
    };
  }

  function note(box, text) {
    var element = box.querySelector("[data-chart-note]");
    if (element) element.textContent = text;
  }

  function draw(chart, data, box) {
    chart.data.datasets = datasets(data);
    chart.options = options(data, box);
    chart.update();
  }

  function setup(box) {
    if (box.getAttribute("data-ready") === "1") return;
    box.setAttribute("data-ready", "1");
    var island = box.querySelector("template[data-chart]");
    var canvas = box.querySelector("canvas");
    if (!island || !canvas) return;
    if (!window.Chart) {
      note(box, "The plot could not be drawn (Chart.js did not load); the table below has every value.");
      return;
    }
    var data = JSON.parse(island.getAttribute("data-chart"));
    var chart = new window.Chart(canvas, {
      type: "scatter",
      data: { datasets: datasets(data) },
      options: options(data, box),
    });
    var xSelect = box.querySelector("[data-axis='x']");
    var ySelect = box.querySelector("[data-axis='y']");
    var defaultNote = box.querySelector("[data-chart-note]");
    defaultNote = defaultNote ? defaultNote.textContent : "";

    // Answers can arrive out of order (two axes changed quickly): only the latest choice draws.
    var latest = 0;

    function reload() {
      var mine = ++latest;
      if (xSelect.value === ySelect.value) {
        note(box, "Choose two different metrics.");
        return;
      }
      var url = box.getAttribute("data-results-url") + "?x=" + encodeURIComponent(xSelect.value) +
        "&y=" + encodeURIComponent(ySelect.value);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (body) {
            if (!response.ok) throw new Error(body.error ? body.error.message : "HTTP " + response.status);
            return body;
          });
        })
        .then(function (payload) {
          if (mine !== latest) return;
          data = payload;
          draw(chart, data, box);
          note(box, defaultNote);
        })
        .catch(function (error) {
          if (mine === latest) note(box, "The plot could not be updated: " + error.message);
        });
    }

    if (xSelect) xSelect.addEventListener("change", reload);
    if (ySelect) ySelect.addEventListener("change", reload);
  }

  // ------------------------------------------------------------------ table columns

  var COLUMNS_KEY = "openlane-portal.metrics-columns";

  function savedColumns() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(COLUMNS_KEY) || "{}");
      return saved && typeof saved === "object" ? saved : {};
    } catch (error) {
      return {}; // storage refused or unreadable: the page's defaults apply
    }
  }

  function saveColumn(name, shown) {
    var saved = savedColumns();
    saved[name] = shown;
    try {
      window.localStorage.setItem(COLUMNS_KEY, JSON.stringify(saved));
    } catch (error) {
      // storage refused (private window, quota): the choice holds until the page is left
    }
  }

  function setupColumns(chooser) {
    if (chooser.getAttribute("data-ready") === "1") return;
    chooser.setAttribute("data-ready", "1");
    var section = chooser.closest("section") || document;
    var table = section.querySelector("[data-metrics-table]");
    if (!table) return;
    var boxes = Array.prototype.slice.call(chooser.querySelectorAll("input[data-column]"));
    var saved = savedColumns();
    boxes.forEach(function (box) {
      var name = box.getAttribute("data-column");
      if (typeof saved[name] === "boolean") box.checked = saved[name];
    });

    function apply() {
      var shown = new Map();
      boxes.forEach(function (box) { shown.set(box.getAttribute("data-column"), box.checked); });
      table.querySelectorAll("[data-col]").forEach(function (cell) {
        var name = cell.getAttribute("data-col");
        if (shown.has(name)) cell.hidden = !shown.get(name);
      });
    }

    apply();
    chooser.hidden = false;
    chooser.addEventListener("change", function (event) {
      var box = event.target.closest("input[data-column]");
      if (!box) return;
      saveColumn(box.getAttribute("data-column"), box.checked);
      apply();
    });
  }

  // An open chooser closes on a click elsewhere or on Escape, like a menu.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("[data-column-chooser][open]").forEach(function (chooser) {
      if (!chooser.contains(event.target)) chooser.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("[data-column-chooser][open]").forEach(function (chooser) {
      chooser.open = false;
      var summary = chooser.querySelector("summary");
      if (summary && chooser.contains(document.activeElement)) summary.focus();
    });
  });

  // ------------------------------------------------------------------ wiring

  function init(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("[data-pareto]")) setup(root);
    root.querySelectorAll("[data-pareto]").forEach(setup);
    if (root.matches && root.matches("[data-column-chooser]")) setupColumns(root);
    root.querySelectorAll("[data-column-chooser]").forEach(setupColumns);
  }

  document.addEventListener("htmx:load", function (event) {
    init(event.detail && event.detail.elt ? event.detail.elt : event.target);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document.body); });
  } else {
    init(document.body);
  }
})();
