/* Inference Model Manager console: the little behaviour the pages need, no framework.
 * - [data-poll-url]: reload that fragment into the element every data-poll-interval ms, until the
 *   fragment carries data-final (the task or status it shows will not change any more).
 * - form[data-confirm]: ask before sending (delete buttons).
 */
(function () {
  "use strict";

  function poll(element) {
    var url = element.getAttribute("data-poll-url");
    var interval = parseInt(element.getAttribute("data-poll-interval") || "1500", 10);
    var failures = 0;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          failures = 0;
          element.innerHTML = html;
          element.removeAttribute("aria-busy");
          if (!element.querySelector("[data-final]")) { window.setTimeout(tick, interval); }
        })
        .catch(function () {
          failures += 1;
          var status = element.parentNode.querySelector("[data-poll-status]");
          if (status) { status.textContent = "Live updates paused: the server did not answer. Retrying..."; }
          window.setTimeout(tick, Math.min(30000, interval * Math.pow(2, failures)));
        });
    }
    if (!element.querySelector("[data-final]")) { window.setTimeout(tick, interval); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll-url]"), poll);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();
