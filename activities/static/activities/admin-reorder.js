/* Reorder the components inline of the activity page: drag rows by ☰ or use ↑ ↓.
 * Positions are renumbered 1..n; saving the activity applies the order. */
(function () {
  "use strict";
  function tbody() { return document.querySelector(".hd-components tbody"); }
  function rows() {
    var body = tbody();
    return body ? Array.prototype.filter.call(body.querySelectorAll("tr.form-row"), function (tr) {
      return !tr.classList.contains("empty-form") && tr.querySelector("input.hd-position");
    }) : [];
  }
  function renumber() {
    rows().forEach(function (tr, i) { tr.querySelector("input.hd-position").value = i + 1; });
  }
  function move(tr, delta) {
    var list = rows(), i = list.indexOf(tr), j = i + delta;
    if (i < 0 || j < 0 || j >= list.length) { return; }
    if (delta < 0) { list[j].parentNode.insertBefore(tr, list[j]); }
    else { list[j].parentNode.insertBefore(tr, list[j].nextSibling); }
    renumber();
  }
  document.addEventListener("DOMContentLoaded", function () {
    var dragging = null;
    rows().forEach(function (tr) {
      tr.setAttribute("draggable", "true");
      var up = tr.querySelector(".hd-up"), down = tr.querySelector(".hd-down");
      if (up) { up.addEventListener("click", function () { move(tr, -1); }); }
      if (down) { down.addEventListener("click", function () { move(tr, 1); }); }
      tr.addEventListener("dragstart", function (e) { dragging = tr; e.dataTransfer.effectAllowed = "move"; });
      tr.addEventListener("dragover", function (e) {
        if (!dragging || dragging === tr) { return; }
        e.preventDefault();
        var box = tr.getBoundingClientRect();
        var after = e.clientY > box.top + box.height / 2;
        tr.parentNode.insertBefore(dragging, after ? tr.nextSibling : tr);
      });
      tr.addEventListener("dragend", function () { dragging = null; renumber(); });
    });
  });
})();
