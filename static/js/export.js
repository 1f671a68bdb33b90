// An export's page: while it runs, read its progress every half second and show it; when it is
// ready, show the download link. Without this script a reload shows the progress so far.
(function () {
  "use strict";
  var section = document.getElementById("export-job");
  if (!section || section.dataset.status !== "running") return;
  var url = section.dataset.progressUrl;
  var bar = document.getElementById("export-bar");
  var message = document.getElementById("export-message");
  var link = document.getElementById("export-download");

  function show(state) {
    bar.value = state.percent;
    bar.textContent = state.percent + "%";
    message.textContent = state.message;
    section.dataset.status = state.status;
    if (state.download) {
      link.href = state.download;
      link.hidden = false;
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) return;
        show(state);
        if (state.status === "running") setTimeout(poll, 500);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }

  poll();
})();
