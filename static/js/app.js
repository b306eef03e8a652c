// The UI's few behaviours, wired by data attributes so pages need no inline handlers:
//   <button type="button" data-copy="#id">  copies the text of the element #id
//   <form data-confirm="Question?">          asks before submitting
//   <details class="menu">                   closes when a click lands outside it
(function () {
  "use strict";

  function copyBySelection(target) {
    // plain-HTTP hosts have no navigator.clipboard: copy the selected text instead
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(target) {
    var text = target.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return copyBySelection(target); });
    }
    return copyBySelection(target);
  }

  function flash(button, text) {
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = text;
    window.clearTimeout(button._restore);
    button._restore = window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (target) {
        copy(target).then(
          function () { flash(button, "Copied"); },
          function () { flash(button, "Press Ctrl+C"); }  // the text is left selected
        );
      }
    }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
})();
