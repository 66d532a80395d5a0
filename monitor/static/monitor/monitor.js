// Pause panel polling while the tab is hidden, and refresh every panel when it shows again.
// No inline handlers: the page runs under a nonce-based CSP with htmx's eval turned off.
(function () {
  document.addEventListener("htmx:beforeRequest", function (event) {
    var verb = event.detail.requestConfig && event.detail.requestConfig.verb;
    if (document.hidden && verb === "get" && event.detail.elt.classList.contains("panel")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      document.querySelectorAll(".panel[hx-trigger]").forEach(function (panel) {
        htmx.trigger(panel, "monitor:refresh");
      });
    }
  });
  // Confirm dangerous actions: forms carry data-confirm="question".
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt.closest("[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // Plain forms (the users page) ask too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-confirm") && !form.hasAttribute("hx-post") &&
        !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
})();
