// heyboss: small enhancements on top of HTMX, loaded from a file (the CSP forbids inline script).
// While a form's HTMX request runs, the form is marked busy and its buttons are disabled, so a
// second click cannot send it twice. Requests from other elements (links, inputs) are left alone.
(function () {
  function formOf(event) {
    var elt = event.detail && event.detail.elt;
    return elt instanceof HTMLFormElement ? elt : null;
  }
  // A refused HTMX action shows its message in #messages (the server retargets it there). Keep
  // it in sight, stuck to the top of the window, until the next request clears it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "messages") target.setAttribute("data-live", "");
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var messages = document.getElementById("messages");
    if (messages && messages.hasAttribute("data-live")) {
      messages.removeAttribute("data-live");
      messages.textContent = "";
    }
  });
  // After a swap that took the focused button away, move focus to the swapped fragment's message
  // (success or refusal), so keyboard and screen reader users learn what happened and continue
  // from there rather than from the top of the page.
  // Each swap knows its own target: a shared "last swapped" variable let the banner's swap,
  // loading while an action ran, stand in for the action's.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    var swappedId = target && target.id ? target.id : null;
    var active = document.activeElement;
    if (!swappedId || (active && active !== document.body && document.contains(active))) return;
    var root = document.getElementById(swappedId);
    // Fragments that load by themselves (the notifications banner) never take the focus.
    if (root && root.hasAttribute("data-keep-focus")) root = null;
    // A refused form's summary of its mistakes first: it links to each field.
    var message = root && (root.querySelector(".error-summary") || root.querySelector(".flash"));
    if (root && !message && root.classList.contains("flash")) message = root;
    if (message) {
      message.setAttribute("tabindex", "-1");
      message.focus({ preventScroll: true });
    }
  });
  // A destructive form (data-confirm) asks first; confirmed, it carries confirm=yes, without
  // which the server asks on a page of its own (the same question without JavaScript). Captured
  // at the document, before HTMX's own submit handler on the form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (!window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopPropagation();
      return;
    }
    if (!form.querySelector("input[name=confirm]")) {
      var yes = document.createElement("input");
      yes.type = "hidden";
      yes.name = "confirm";
      yes.value = "yes";
      form.appendChild(yes);
    }
  }, true);
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = formOf(event);
    if (!form) return;
    form.setAttribute("aria-busy", "true");
    form.querySelectorAll("button:not([disabled])").forEach(function (button) {
      button.disabled = true;
      button.setAttribute("data-busy", "");
    });
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = formOf(event);
    if (!form) return;
    form.removeAttribute("aria-busy");
    form.querySelectorAll("button[data-busy]").forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("data-busy");
    });
  });
})();
