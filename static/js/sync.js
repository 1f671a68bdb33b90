// The sync page: while a sync runs, read its progress every half second and show it. Without
// this script the page still works; a reload shows the progress so far.
(function () {
  "use strict";
  var section = document.getElementById("sync-now");
  if (!section) return;
  var url = section.dataset.progressUrl;
  var box = document.getElementById("sync-progress");
  var button = document.getElementById("sync-button");
  var bar = document.getElementById("sync-bar");

  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function show(job) {
    box.hidden = false;
    bar.max = Math.max(job.total, 1);
    bar.value = job.sent;
    set("sync-phase", job.phase_label);
    set("sync-error", job.error_message || "");
    set("c-sent", job.sent);
    ["stored", "duplicate", "merged", "conflict", "rejected"].forEach(function (k) {
      set("c-" + k, job.counts[k]);
    });
    set("c-pulled", job.pulled);
    button.disabled = job.running;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.job) return;
        show(data.job);
        if (data.job.running) {
          setTimeout(poll, 500);
        } else {
          // Finished: the page's status, receipt and refused records are stale. The page drawn
          // again has no running sync, so this happens once.
          window.location.reload();
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }

  if (button && button.disabled) poll();
})();
