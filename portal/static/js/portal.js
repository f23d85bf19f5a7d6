/* OpenLane Portal — small progressive enhancements. The pages work without JavaScript; the
 * CSP forbids inline scripts, so behaviour is attached here through data- attributes:
 *   data-dismiss="flash"     close button of a flash message
 *   data-copy="#selector"    copy the text of the selected element to the clipboard
 *   data-confirm="question"  on a <form>: ask before submitting
 */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss='flash']");
    if (dismiss) {
      var flash = dismiss.closest(".flash");
      if (flash) flash.remove();
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) return;
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        var label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = label; }, 1500);
      });
    }
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  // htmx: an expired session answers 401 with HX-Redirect (followed by htmx itself); show
  // other failed partial updates instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 401) return;
    var box = document.querySelector(".flashes");
    if (!box) {
      box = document.createElement("div");
      box.className = "flashes";
      box.setAttribute("role", "status");
      var main = document.getElementById("main");
      if (main) main.insertBefore(box, main.firstChild);
    }
    var flash = document.createElement("div");
    flash.className = "flash flash-error";
    var text = document.createElement("span");
    text.textContent = "The page could not be updated (HTTP " + status + "). Reload and try again.";
    flash.appendChild(text);
    box.appendChild(flash);
  });
})();
