// The outputs list, keyboard first (templates/annotate/outputs.html):
//   /      the search field            j / k  next / previous row (its link takes the focus,
//   x      check the row's box                 so Enter opens the output)
//   n / p  next / previous page of results
// As on the Grade page, no key fires while the focus is in a text field (static/app.js).
(function () {
  "use strict";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#output-results tr[data-output]"));
  }

  // The row the keys act on: the one marked current, else the one holding the focus.
  function currentRow() {
    var marked = document.querySelector("#output-results tr.is-current");
    if (marked) return marked;
    var focused = document.activeElement;
    return focused && focused.closest ? focused.closest("#output-results tr[data-output]") : null;
  }

  function mark(row) {
    var previous = document.querySelector("#output-results tr.is-current");
    if (previous) previous.classList.remove("is-current");
    row.classList.add("is-current");
    var link = row.querySelector("[data-testid=output-link]");
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(currentRow());
    index = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, index + step));
    mark(all[index]);
  }

  function toggle() {
    var row = currentRow();
    var box = row && row.querySelector('input[type="checkbox"]');
    if (!box) return;
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function follow(rel) {
    var link = document.querySelector('#output-results .pagination a[rel="' + rel + '"]');
    if (link) link.click();
  }

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("output-results")) return;
    if (event.defaultPrevented || event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
    if (window.concordIsTyping && window.concordIsTyping(event.target)) return;
    var actions = {
      "/": function () { var search = document.getElementById("output-search"); if (search) search.focus(); },
      j: function () { move(1); },
      k: function () { move(-1); },
      x: toggle,
      n: function () { follow("next"); },
      p: function () { follow("prev"); },
    };
    var action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  });
})();
