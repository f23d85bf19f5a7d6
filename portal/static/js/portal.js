/* OpenLane Portal — small progressive enhancements. The pages work without JavaScript; the
 * CSP forbids inline scripts, so behaviour is attached here through data- attributes:
 *   data-dismiss="flash"     close button of a flash message
 *   data-copy="#selector"    copy the text of the selected element to the clipboard
 *   data-confirm="question"  on a <form>: ask before submitting
 * A table box (.table-wrap) or a <pre> that scrolls (a wide table on a phone, a long script)
 * is made reachable from the keyboard (tabindex=0) while, and only while, it overflows.
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

  var SCROLLERS = ".table-wrap, pre";

  function scrolls(box) {
    var style = window.getComputedStyle(box);
    var x = /auto|scroll/.test(style.overflowX) && box.scrollWidth > box.clientWidth;
    var y = /auto|scroll/.test(style.overflowY) && box.scrollHeight > box.clientHeight;
    return x || y;
  }

  function markScrollers() {
    document.querySelectorAll(SCROLLERS).forEach(function (box) {
      var ours = box.getAttribute("data-scroll-focus") === "1";
      if (scrolls(box)) {
        if (box.hasAttribute("tabindex")) return;
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroll-focus", "1");
      } else if (ours) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    });
  }

  var pending = 0;
  function markSoon() {
    window.cancelAnimationFrame(pending);
    pending = window.requestAnimationFrame(markScrollers);
  }

  window.addEventListener("resize", markSoon);
  window.addEventListener("load", markSoon);
  document.addEventListener("change", markSoon); // e.g. columns shown or hidden
  document.addEventListener("htmx:afterSettle", markSoon);
  document.addEventListener("toggle", markSoon, true); // a <details> opened or closed
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", markSoon);
  } else {
    markSoon();
  }

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
