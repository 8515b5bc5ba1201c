// Keyboard shortcuts and small behaviours. Pages opt in with data attributes:
//   [data-hotkeys]           the region whose shortcuts are live (its data-form names the form
//                            that Enter submits)
//   [data-hotkey="k"]        pressing k checks this radio, focuses this text field, or clicks
//                            this button; with data-cycle="name" it cycles the radios `name`
//   [data-hotkey-open="k"]   pressing k opens this <details> and focuses its first field
//   [data-undo]              Ctrl+Z clicks it too
//   [data-shortcuts-toggle]  opens or closes the #shortcuts dialog (so does ?)
//   details[data-remember]   remembers whether it was open, across items and reloads
//   [data-reading-toggle="raw|diff"]  shows texts raw, or the output's diff from its reference;
//                            the choice is a class on <html>, so it survives swaps and reloads
//   [data-theme-toggle]      cycles the colours: the system's (auto), dark, light
// window.concordChartTheme() gives Chart.js the theme's colours; chart scripts call it before
// drawing and draw again on the document's "concord:theme" event.
// Shortcuts never fire while the focus is in a text field: typing a note is just typing.
(function () {
  "use strict";

  var TEXT_TYPES = /^(text|search|email|url|tel|password|number|date|datetime-local|time)$/;

  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && TEXT_TYPES.test(el.type || "text");
  }

  // Page scripts (static/outputs.js) keep to the same rule.
  window.concordIsTyping = isTyping;

  function scope() {
    return document.querySelector("[data-hotkeys]");
  }

  function shortcutsDialog() {
    return document.getElementById("shortcuts");
  }

  function toggleShortcuts() {
    var dialog = shortcutsDialog();
    if (!dialog) return;
    if (dialog.open) dialog.close();
    else dialog.showModal();
  }

  function cycle(name) {
    var radios = Array.prototype.slice.call(
      document.querySelectorAll('input[type="radio"][name="' + CSS.escape(name) + '"]')
    );
    if (!radios.length) return;
    var current = radios.findIndex(function (r) { return r.checked; });
    var next = radios[(current + 1) % radios.length];
    next.checked = true;
    next.dispatchEvent(new Event("change", { bubbles: true }));
    reveal(next.closest("[data-criterion]") || next.parentElement);
  }

  // A row changed by its key must be seen: scroll it out from under the sticky decision bar
  // (its scroll-margin-bottom in app.css keeps it clear of the bar), then flash it.
  function reveal(el) {
    if (!el) return;
    el.scrollIntoView({ block: "nearest" });
    flash(el);
  }

  function flash(el) {
    if (!el) return;
    el.classList.remove("flash-key");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash-key");
  }

  function activate(target) {
    if (target.dataset.cycle) {
      cycle(target.dataset.cycle);
    } else if (target.matches('input[type="radio"], input[type="checkbox"]')) {
      target.checked = target.type === "radio" ? true : !target.checked;
      target.dispatchEvent(new Event("change", { bubbles: true }));
      reveal(target.closest("label") || target);
    } else if (isTyping(target)) {
      target.focus();
      if (target.setSelectionRange && target.value) {
        target.setSelectionRange(target.value.length, target.value.length);
      }
    } else if (!target.disabled) {
      var owner = target.closest("form");
      if (owner && window.htmx) window.htmx.process(owner);
      target.click();
    }
  }

  function submitForm(region, from) {
    // The form the key was pressed in (a radio of the meeting's adjudication, say) comes
    // before the region's default form.
    var form = (from && from.closest && from.closest("form")) || document.getElementById(region.dataset.form || "");
    if (!form) return;
    // A key pressed right after a swap can beat htmx's settle step; binding the new form
    // first (idempotent) keeps the submit an htmx request instead of a full page load.
    if (window.htmx) window.htmx.process(form);
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  document.addEventListener("keydown", function (event) {
    var dialog = shortcutsDialog();
    if (event.key === "Escape") {
      if (isTyping(event.target) || (dialog && dialog.open && dialog.contains(event.target))) {
        event.target.blur();
      }
      return; // an open <dialog> closes itself on Escape
    }
    if (event.defaultPrevented || event.isComposing || isTyping(event.target)) return;
    var region = scope();
    if (!region) return;
    if (dialog && dialog.open && event.key !== "?") return;
    if (event.altKey || event.metaKey) return;
    if (event.ctrlKey) {
      if (event.key === "z" || event.key === "Z") {
        var undo = region.querySelector("[data-undo]");
        if (undo && !undo.disabled) {
          event.preventDefault();
          undo.click();
        }
      }
      return;
    }
    var key = event.key;
    if (key === "?") {
      event.preventDefault();
      toggleShortcuts();
      return;
    }
    if (key === "Enter") {
      // Enter on a focused button or link keeps its usual meaning; not on one left focused in
      // a dialog that has closed (the shortcuts' Close button after Escape).
      if (event.target.closest && event.target.closest("button, a, summary")
          && !event.target.closest("dialog:not([open])")) return;
      event.preventDefault();
      submitForm(region, event.target);
      return;
    }
    if (key.length !== 1) return;
    var opener = region.querySelector('[data-hotkey-open="' + CSS.escape(key) + '"]');
    if (opener) {
      event.preventDefault();
      opener.open = true;
      // Prefer a field in an already open inner panel; open the panels around the one chosen,
      // since a field inside a closed <details> cannot take the focus.
      var field = opener.querySelector(":scope details[open] input:not([type=hidden]), :scope details[open] textarea")
        || opener.querySelector("input:not([type=hidden]), textarea");
      if (field) {
        for (var d = field.parentElement.closest("details"); d && d !== opener; d = d.parentElement.closest("details")) d.open = true;
        field.focus();
        field.scrollIntoView({ block: "center" });
      } else {
        opener.scrollIntoView({ block: "nearest" });
      }
      return;
    }
    var target = region.querySelector('[data-hotkey="' + CSS.escape(key) + '"]');
    if (!target) return;
    event.preventDefault();
    activate(target);
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-shortcuts-toggle]");
    if (toggle) {
      event.preventDefault();
      toggleShortcuts();
    }
  });

  // A closed shortcuts dialog must not keep the focus on its Close button: Enter would then
  // "click" it and reopen the dialog instead of submitting the grade.
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog && dialog.id === "shortcuts" && dialog.contains(document.activeElement)) {
      document.activeElement.blur();
    }
  }, true);

  // <details data-remember>: keep the reader's choice across items and reloads.
  function restoreDetails(root) {
    root.querySelectorAll("details[data-remember]").forEach(function (details) {
      var key = "concord:open:" + details.dataset.remember;
      try {
        var saved = window.localStorage.getItem(key);
        if (saved !== null) details.open = saved === "1";
      } catch (e) { /* storage may be disabled */ }
      if (details.dataset.rememberBound) return;
      details.dataset.rememberBound = "1";
      details.addEventListener("toggle", function () {
        try { window.localStorage.setItem(key, details.open ? "1" : "0"); } catch (e) { /* ignore */ }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { restoreDetails(document); });

  // Reading modes: rendered (neither class), raw or diff. Raw and diff exclude each other,
  // since each replaces what the pane shows.
  var READING_KEY = "concord:reading";
  var READING_MODES = ["raw", "diff"];

  function readingMode() {
    try {
      var saved = window.localStorage.getItem(READING_KEY);
      return READING_MODES.indexOf(saved) === -1 ? "" : saved;
    } catch (e) { return ""; }
  }

  function applyReading(mode) {
    READING_MODES.forEach(function (m) {
      document.documentElement.classList.toggle("reading-" + m, m === mode);
    });
    document.querySelectorAll("[data-reading-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.readingToggle === mode ? "true" : "false");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-reading-toggle]");
    if (!button) return;
    var mode = readingMode() === button.dataset.readingToggle ? "" : button.dataset.readingToggle;
    try { window.localStorage.setItem(READING_KEY, mode); } catch (e) { /* storage may be disabled */ }
    applyReading(mode);
  });

  applyReading(readingMode());  // before first paint where possible: the script is deferred
  document.addEventListener("DOMContentLoaded", function () { applyReading(readingMode()); });
  document.addEventListener("htmx:afterSwap", function () { applyReading(readingMode()); });

  // Colours: Pico follows the system unless <html data-theme> forces one. The choice is kept
  // in localStorage and applied before the first paint by base.html's head.
  var THEME_KEY = "concord:theme";
  var THEMES = ["auto", "dark", "light"];

  function savedTheme() {
    try {
      var saved = window.localStorage.getItem(THEME_KEY);
      return THEMES.indexOf(saved) === -1 ? "auto" : saved;
    } catch (e) { return "auto"; }
  }

  function applyTheme(theme, redraw) {
    if (theme === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.textContent = "◐ " + theme;
      button.setAttribute("aria-label", "Colour theme: " + theme);
    });
    if (redraw) redrawCharts();
  }

  function cssColour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  // Chart.js draws on a canvas, which CSS cannot reach: its defaults take the theme's colours
  // when a chart is built and again when the theme changes.
  window.concordChartTheme = function () {
    var colours = {
      text: cssColour("--pico-muted-color", "#646b79"),
      grid: cssColour("--pico-muted-border-color", "#e7eaf0"),
      strong: cssColour("--pico-color", "#373c44"),
      accent: cssColour("--concord-accent", "#34507a"),
      violet: cssColour("--concord-violet", "#6b3fa0"),
      warm: cssColour("--concord-warm", "#b3541e"),
      pass: cssColour("--concord-pass", "#1f8a4c"),
    };
    if (typeof Chart !== "undefined") {
      Chart.defaults.color = colours.text;
      Chart.defaults.borderColor = colours.grid;
    }
    return colours;
  };

  // Chart scripts draw again on this event, with the new colours.
  function redrawCharts() {
    window.concordChartTheme();
    document.dispatchEvent(new CustomEvent("concord:theme"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-theme-toggle]");
    if (!button) return;
    var theme = THEMES[(THEMES.indexOf(savedTheme()) + 1) % THEMES.length];
    try { window.localStorage.setItem(THEME_KEY, theme); } catch (e) { /* storage may be disabled */ }
    applyTheme(theme, true);
  });
  document.addEventListener("DOMContentLoaded", function () { applyTheme(savedTheme(), false); });
  if (window.matchMedia) {
    var darkQuery = window.matchMedia("(prefers-color-scheme: dark)");
    if (darkQuery.addEventListener) darkQuery.addEventListener("change", redrawCharts);
  }

  // htmx: answers with 400 carry the form again with its error, so they are swapped in too.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 400 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    restoreDetails(event.detail.target.isConnected ? event.detail.target : document);
    restoreDetails(document);
    var active = document.activeElement;
    if (!active || active === document.body || !active.isConnected) {
      var region = scope();
      if (region) {
        region.setAttribute("tabindex", "-1");
        region.focus({ preventScroll: true });
      }
    }
    window.scrollTo({ top: 0 });
  });

  // A server error or a lost connection must not look like a saved grade.
  function showFailure(message) {
    var region = scope();
    if (!region) return;
    var line = region.querySelector(".statusline");
    if (!line) return;
    var note = line.querySelector(".error-note") || document.createElement("span");
    note.className = "error-note";
    note.setAttribute("role", "alert");
    note.textContent = message;
    line.insertBefore(note, line.querySelector(".spacer") ? line.querySelector(".spacer").nextSibling : null);
  }

  document.addEventListener("htmx:responseError", function (event) {
    showFailure("Not saved: the server answered " + event.detail.xhr.status + ". Reload the page.");
  });
  document.addEventListener("htmx:sendError", function () {
    showFailure("Not saved: no connection. Try again, or reload the page.");
  });
})();
