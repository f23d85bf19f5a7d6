/* Submit form enhancements (the form works without them):
 *   - sweep rows can be added and removed (names renumbered: sweep-<i>-<field>);
 *   - the range of the chosen parameter is shown under its row;
 *   - the live estimate (htmx on #estimate) is refreshed after rows change;
 *   - the estimate's problems are put at their fields: the slot [data-error-for=KEY] gets the
 *     messages, and the controls [data-error-key=KEY] become aria-invalid and point at the
 *     slot (aria-describedby). Only for fields the user has touched, so an untouched form
 *     shows no error; after a submit, or for a copied submission, for every field.
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var rows = document.getElementById("sweep-rows");
  if (!rows) return;
  var form = document.getElementById("submit-form");
  var maxRows = parseInt(rows.getAttribute("data-max-rows"), 10) || 16;
  var showAll = form && form.getAttribute("data-show-errors") === "yes";
  var touched = {};
  var SOURCE = ["repo_url", "ref", "design_path"];
  var ROW_KEY = /^sweep-\d+$/;

  function allRows() {
    return Array.prototype.slice.call(rows.querySelectorAll("[data-sweep-row]"));
  }

  function renumber() {
    allRows().forEach(function (row, index) {
      row.querySelectorAll("[name], [id], label[for], [data-error-key], [data-error-for]").forEach(function (el) {
        ["name", "id", "for", "data-error-key", "data-error-for"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/^sweep-\d+(?=-|$)/, "sweep-" + index));
        });
        var described = el.getAttribute("aria-describedby");
        if (described) {
          el.setAttribute("aria-describedby", described.split(/\s+/).map(function (id) {
            return id.replace(/^sweep-\d+-/, "sweep-" + index + "-");
          }).join(" "));
        }
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
    row.querySelectorAll("[data-error-for]").forEach(function (slot) { fillSlot(slot, []); });
    row.querySelectorAll("[data-error-key]").forEach(function (control) { markControl(control, []); });
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

  /* ---------------------------------------------------------------- problems at their fields */

  function touch(event) {
    var key = event.target.getAttribute && event.target.getAttribute("data-error-key");
    if (!key) return;
    touched[key] = true;
    if (SOURCE.indexOf(key) >= 0) SOURCE.forEach(function (k) { touched[k] = true; });
    if (ROW_KEY.test(key) || key === "sweep_mode") touched.sweep = true;
  }

  function fillSlot(slot, messages) {
    slot.textContent = "";
    messages.forEach(function (message) {
      var p = document.createElement("p");
      p.className = "field-error";
      p.textContent = message;
      slot.appendChild(p);
    });
    var wrapper = slot.parentElement && slot.parentElement.closest(".field, .sweep-row");
    if (wrapper && slot.parentElement === wrapper) wrapper.classList.toggle("has-error", messages.length > 0);
  }

  function markControl(control, slotIds) {
    var kept = (control.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (id) {
      return id && !/-error$/.test(id);
    });
    var ids = kept.concat(slotIds);
    if (ids.length) control.setAttribute("aria-describedby", ids.join(" "));
    else control.removeAttribute("aria-describedby");
    if (slotIds.length) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  }

  function slotOf(key) {
    return form.querySelector('[data-error-for="' + key + '"]');
  }

  function rowUsed(control) {
    var row = control.closest("[data-sweep-row]");
    var select = row && row.querySelector("[data-sweep-param]");
    return Boolean(select && select.value);
  }

  function showErrors(source) {
    var errors = {};
    source.querySelectorAll("[data-key]").forEach(function (p) {
      var key = p.getAttribute("data-key");
      (errors[key] = errors[key] || []).push(p.textContent);
    });
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      var key = slot.getAttribute("data-error-for");
      fillSlot(slot, showAll || touched[key] ? errors[key] || [] : []);
    });
    form.querySelectorAll("[data-error-key]").forEach(function (control) {
      var key = control.getAttribute("data-error-key");
      var keys = ROW_KEY.test(key) && rowUsed(control) ? [key, "sweep"] : [key];
      var ids = [];
      keys.forEach(function (k) {
        var slot = slotOf(k);
        if (slot && slot.childElementCount && control.type !== "radio") ids.push(slot.id);
      });
      markControl(control, ids);
    });
  }

  if (form) {
    form.addEventListener("input", touch);
    form.addEventListener("change", touch);
    form.addEventListener("submit", function () { showAll = true; });
  }
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "estimate" || !form) return;
    var source = target.querySelector("[data-field-errors]");
    if (source) showErrors(source);
  });

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
