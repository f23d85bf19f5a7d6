/* Submit form enhancements (the form works without them):
 *   - sweep rows can be added and removed (names renumbered: sweep-<i>-<field>);
 *   - the range of the chosen parameter is shown under its row;
 *   - the live estimate (htmx on #estimate) is refreshed after rows change.
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var rows = document.getElementById("sweep-rows");
  if (!rows) return;
  var form = document.getElementById("submit-form");
  var maxRows = parseInt(rows.getAttribute("data-max-rows"), 10) || 16;

  function allRows() {
    return Array.prototype.slice.call(rows.querySelectorAll("[data-sweep-row]"));
  }

  function renumber() {
    allRows().forEach(function (row, index) {
      row.querySelectorAll("[name], [id], label[for]").forEach(function (el) {
        ["name", "id", "for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/^sweep-\d+-/, "sweep-" + index + "-"));
        });
      });
      var legend = row.querySelector("legend");
      if (legend) legend.textContent = "Swept parameter " + (index + 1);
    });
    var add = document.querySelector("[data-sweep-add]");
    if (add) add.disabled = allRows().length >= maxRows;
  }

  function changed() {
    document.body.dispatchEvent(new CustomEvent("sweep-rows-changed"));
  }

  function clearRow(row) {
    row.classList.remove("has-error");
    row.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
    row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    row.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
    showHint(row);
  }

  function showHint(row) {
    var select = row.querySelector("[data-sweep-param]");
    var hint = row.querySelector("[data-sweep-hint]");
    if (!select || !hint) return;
    var option = select.options[select.selectedIndex];
    var range = option ? option.getAttribute("data-range") : null;
    hint.textContent = range ? option.value + ": " + range : "";
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-sweep-add]")) {
      var list = allRows();
      if (!list.length || list.length >= maxRows) return;
      var copy = list[list.length - 1].cloneNode(true);
      clearRow(copy);
      rows.appendChild(copy);
      renumber();
      var select = copy.querySelector("select");
      if (select) select.focus();
      return;
    }
    var remove = event.target.closest("[data-sweep-remove]");
    if (remove) {
      var row = remove.closest("[data-sweep-row]");
      if (allRows().length > 1) row.remove(); else clearRow(row);
      renumber();
      changed();
    }
  });

  rows.addEventListener("change", function (event) {
    if (event.target.matches("[data-sweep-param]")) showHint(event.target.closest("[data-sweep-row]"));
  });

  allRows().forEach(showHint);
  renumber();
  if (form) form.setAttribute("data-enhanced", "yes");
})();
