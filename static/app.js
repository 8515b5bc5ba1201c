// Keyboard shortcuts and small behaviours. Pages opt in with data attributes; see the grading
// page's shortcut list (press ?).
(function () {
  "use strict";
})();
