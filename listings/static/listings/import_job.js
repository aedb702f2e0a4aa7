/* Import job page (admin): polls the job's progress until it finishes (a static file: the CSP forbids inline scripts). */
(function () {
  var root = document.getElementById("import-job");
  function poll() {
    fetch(root.getAttribute("data-progress-url"), {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (p) {
      if (p.finished) { window.location.reload(); return; }
      var bar = document.getElementById("import-bar");
      if (p.total) { bar.max = p.total; }
      bar.value = p.processed;
      document.getElementById("import-status").textContent = p.status_label;
      document.getElementById("import-count").textContent = p.processed + " of " + (p.total === null ? "?" : p.total) + " rows";
      setTimeout(poll, 1000);
    }).catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
