// The backup page: while a backup runs, read its progress every half second and show it. Without
// this script the page still works; a reload shows the progress so far.
(function () {
  "use strict";
  var section = document.getElementById("backup-now");
  if (!section) return;
  var url = section.dataset.progressUrl;
  var box = document.getElementById("backup-progress");
  var button = document.getElementById("backup-button");
  var bar = document.getElementById("backup-bar");

  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.job) return;
        var job = data.job;
        box.hidden = false;
        bar.max = Math.max(job.total, 1);
        bar.value = job.done;
        set("backup-phase", job.phase_label);
        set("backup-error", job.error_message || "");
        button.disabled = job.running;
        if (job.running) {
          setTimeout(poll, 500);
        } else {
          window.location.reload();  // the last backup's facts are stale; once, as above
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }

  if (button && button.disabled) poll();
})();
