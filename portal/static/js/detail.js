/* OpenLane Portal — the submission page: live console, sortable metrics table, task selection.
 * The CSP forbids inline scripts; everything hooks on data- attributes and htmx events.
 *   pre.console[data-log-url]  follows a task's log: GET <url>&offset=N returns the new bytes
 *                              (headers X-Log-Offset/-Size/-Reset/-File/-Done); text is added
 *                              as text nodes, never parsed as HTML.
 *   table[data-sortable]       header buttons sort the rows by their cells' data-value.
 *   input.task-select          ticked tasks stay ticked when htmx refreshes the tasks table.
 *   [data-version]             a region the live poll swaps in out of band is left alone when
 *                              its version has not changed; [data-task-index] parts answered
 *                              for a task the panel no longer shows are dropped.
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MAX_CHARS = 1000000; // characters kept in a console before the oldest are dropped

  // ------------------------------------------------------------------ console

  function follow(pre) {
    if (pre.getAttribute("data-following") === "1") return;
    pre.setAttribute("data-following", "1");
    var url = pre.getAttribute("data-log-url");
    var offset = parseInt(pre.getAttribute("data-offset") || "0", 10) || 0;
    var file = pre.getAttribute("data-file") || "";
    var decoder = new TextDecoder("utf-8");
    var panel = pre.closest(".task-panel");
    var status = panel ? panel.querySelector("[data-console-status]") : null;

    function setStatus(text) {
      if (status) status.textContent = text;
    }

    function append(text) {
      if (!text) return;
      var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.appendChild(document.createTextNode(text));
      if (pre.textContent.length > MAX_CHARS) {
        pre.textContent = pre.textContent.slice(-Math.floor(MAX_CHARS / 2));
      }
      if (stick) pre.scrollTop = pre.scrollHeight;
    }

    function step() {
      if (!pre.isConnected) return; // the panel was replaced: stop following
      var sep = url.indexOf("?") >= 0 ? "&" : "?";
      fetch(url + sep + "offset=" + offset, {
        credentials: "same-origin",
        headers: { Accept: "text/plain" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.arrayBuffer().then(function (body) {
            return { headers: response.headers, body: body };
          });
        })
        .then(function (answer) {
          if (!pre.isConnected) return;
          var h = answer.headers;
          var name = h.get("X-Log-File") || "";
          if (h.get("X-Log-Reset") === "1" || name !== file) {
            pre.textContent = ""; // a new attempt (resubmission) writes a new log
            decoder = new TextDecoder("utf-8");
            file = name;
          }
          if (answer.body.byteLength) {
            append(decoder.decode(new Uint8Array(answer.body), { stream: true }));
          }
          offset = parseInt(h.get("X-Log-Offset") || String(offset), 10);
          var size = parseInt(h.get("X-Log-Size") || "0", 10);
          var more = offset < size;
          if (h.get("X-Log-Done") === "1" && !more) {
            append(decoder.decode());
            setStatus("finished");
            return;
          }
          setStatus(file ? "following…" : "waiting for the task to start…");
          window.setTimeout(step, more ? 50 : POLL_MS);
        })
        .catch(function () {
          setStatus("connection lost, retrying…");
          window.setTimeout(step, POLL_MS * 3);
        });
    }

    pre.scrollTop = pre.scrollHeight;
    if (pre.getAttribute("data-done") !== "1") window.setTimeout(step, POLL_MS);
  }

  // ------------------------------------------------------------------ sortable table

  function cellValue(row, column) {
    var cell = row.children[column];
    if (!cell) return "";
    var value = cell.getAttribute("data-value");
    return value === null ? cell.textContent.trim() : value;
  }

  function compare(type, a, b) {
    if (a === "" && b === "") return 0;
    if (a === "") return 1; // empty cells last, whatever the direction
    if (b === "") return -1;
    var na = parseFloat(a);
    var nb = parseFloat(b);
    var numeric = type === "number" || (type === "auto" && !isNaN(na) && !isNaN(nb));
    if (numeric && !isNaN(na) && !isNaN(nb)) return na - nb;
    return a.localeCompare(b, undefined, { numeric: true });
  }

  function sortBy(button) {
    var th = button.closest("th");
    var table = button.closest("table");
    var body = table.tBodies[0];
    if (!th || !body) return;
    var column = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var type = button.getAttribute("data-sort-type") || "auto";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (ra, rb) {
      var a = cellValue(ra, column);
      var b = cellValue(rb, column);
      if (a === "" || b === "") return compare(type, a, b);
      var order = compare(type, a, b);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(th.parentNode.children, function (other) {
      other.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  // ------------------------------------------------------------------ task selection

  var ticked = new Set();

  function markSelected() {
    var panel = document.getElementById("task-panel");
    var index = panel ? panel.getAttribute("data-index") : null;
    document.querySelectorAll(".tasks-table .task-row").forEach(function (row) {
      row.classList.toggle("is-selected", row.getAttribute("data-index") === index);
    });
  }

  function restoreTicks(root) {
    // only boxes in the page are sent with the form; a task that finished has lost its box
    root.querySelectorAll("input.task-select").forEach(function (box) {
      if (ticked.has(box.value)) box.checked = true;
    });
  }

  // ------------------------------------------------------------------ live regions

  // htmx:oobBeforeSwap: skip a region the live poll sent unchanged or for another task.
  function keepOrDrop(event) {
    var detail = event.detail;
    var incoming = detail.fragment ? detail.fragment.firstElementChild : null;
    var target = detail.target;
    if (!incoming || !target) return;
    var index = target.getAttribute("data-task-index");
    var version = incoming.getAttribute("data-version");
    if (index !== null && incoming.getAttribute("data-task-index") !== index) {
      detail.shouldSwap = false; // the user opened another task while the poll was answered
    } else if (version && version === target.getAttribute("data-version")) {
      detail.shouldSwap = false; // unchanged: keep the selection, focus and open <details>
    } else {
      var open = target.querySelectorAll("details");
      incoming.querySelectorAll("details").forEach(function (box, i) {
        if (open[i] && open[i].open) box.open = true;
      });
    }
  }

  // ------------------------------------------------------------------ wiring

  function setup(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("pre.console[data-log-url]")) follow(root);
    root.querySelectorAll("pre.console[data-log-url]").forEach(follow);
    if (root.id === "live" || root.querySelector("#live")) restoreTicks(root);
    markSelected();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("table[data-sortable] .sort-button");
    if (button) sortBy(button);
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.classList || !box.classList.contains("task-select")) return;
    if (box.checked) ticked.add(box.value);
    else ticked.delete(box.value);
  });

  document.addEventListener("htmx:oobBeforeSwap", keepOrDrop);

  document.addEventListener("htmx:load", function (event) {
    setup(event.detail && event.detail.elt ? event.detail.elt : event.target);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { setup(document.body); });
  } else {
    setup(document.body);
  }
})();
