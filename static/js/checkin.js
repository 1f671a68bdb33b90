// Attendance check-in: a tap is put in the device's outbox and sent at once; the row shows the
// mark straight away, flagged while it waits on the device. Taps made with the server
// unreachable are sent when it is back (app.js) and shown again if the page is reloaded meanwhile.
// Without this script (or without storage on the device) every tap is an ordinary form post.
/* global FieldappOutbox, FieldappApp, FieldappText */
(function () {
  "use strict";
  var form = document.getElementById("checkin");
  var filter = document.querySelector("[data-roster-filter]");
  var rows = form ? Array.prototype.slice.call(form.querySelectorAll("li[data-name]")) : [];

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.dataset.confirm)) { event.preventDefault(); }
    });
  });

  function fold(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^0-9a-z]+/g, " ").trim();
  }

  if (filter) {
    filter.addEventListener("input", function () {
      var words = fold(filter.value).split(" ").filter(Boolean);
      rows.forEach(function (row) {
        var name = row.dataset.name;
        row.hidden = !words.every(function (w) { return name.indexOf(w) >= 0; });
      });
    });
  }

  if (!form || !window.FieldappOutbox || !window.FieldappApp) { return; }
  var Outbox = window.FieldappOutbox;
  var text = window.FieldappText;
  var status = document.getElementById("checkin-status");
  var session = form.dataset.session;
  var byUuid = {};
  var direct = false;
  rows.forEach(function (row) { byUuid[row.dataset.uuid] = row; });

  // Show a mark on its row: the pressed button, the revision the next tap builds on, and
  // whether it waits on the device or needs attention.
  function show(row, mark, revision, state) {
    row.dataset.revision = revision;
    row.classList.toggle("waiting", state === "waiting");
    row.classList.toggle("attention", state === "attention");
    var note = row.querySelector(".row-state");
    if (!note) {
      note = document.createElement("span");
      note.className = "row-state";
      row.querySelector(".name").appendChild(note);
    }
    note.textContent = state ? " · " + text.states[state] : "";
    row.querySelectorAll("button.mark").forEach(function (button) {
      var parts = button.value.split(":");
      button.value = parts[0] + ":" + revision + ":" + parts[2];
      button.setAttribute("aria-pressed", parts[2] === mark ? "true" : "false");
    });
  }

  function status_of(value) { return value.split(":")[2]; }

  // Taps still on the device (this page may be an old copy kept by the service worker).
  function overlay() {
    return Outbox.all().then(function (entries) {
      entries.forEach(function (entry) {
        var row = byUuid[entry.uuid];
        if (row && entry.kind === "mark" && entry.session === session) {
          // A refused tap shows the mark the server holds, and the next tap builds on it.
          var refused = entry.state === "attention" && entry.server_revision !== undefined;
          show(row, refused ? entry.server_status : status_of(entry.fields.mark[0]),
               refused ? entry.server_revision : entry.base, entry.state);
        }
      });
    });
  }

  function answered(row, answer) {
    if (!answer) { return; }
    show(row, answer.status, answer.revision, null);
    status.textContent = answer.outcome === "stored" || answer.outcome === "duplicate" ? "" : answer.message;
  }

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (direct || !button || button.name !== "mark") { return; }
    event.preventDefault();
    var row = button.closest("li");
    var base = row.dataset.revision;
    var entry = {
      uuid: row.dataset.uuid, kind: "mark", session: session, lang: document.body.dataset.lang,
      base: base, fields: { mark: [row.dataset.person + ":" + base + ":" + status_of(button.value)] },
      label: row.dataset.title + " · " + button.textContent.trim(), back: location.pathname,
      user: document.body.dataset.user,
    };
    show(row, status_of(button.value), base, "waiting");  // instant feedback; the answer confirms it
    Outbox.put(entry).then(function () {
      return Outbox.replay(entry.uuid);
    }).then(function (summary) {
      var answer = summary.results[entry.uuid];
      if (answer && answer.outcome !== "stored" && answer.outcome !== "duplicate") {
        Outbox.removeIf(entry);  // the officer sees why, and taps again (unless already re-tapped)
      }
      if (answer) { return answered(row, answer); }
      status.textContent = text.mark_waiting;
      FieldappApp.later(summary);
    }).catch(function (error) {
      if (error && error.name === "QuotaExceededError") { FieldappApp.storageFull(); }
      direct = true;
      form.requestSubmit(button);  // no storage on this device: post the tap as without this script
    });
  });

  // Marks sent later, by another tab or the service worker.
  Outbox.listen(function (message) {
    if (message.type === "result" && byUuid[message.uuid] && message.result.revision !== undefined) {
      answered(byUuid[message.uuid], message.result);
    }
  });
  overlay();
})();
