// The outbox page: what waits on this device, what needs attention and why, with "send now",
// "correct" and "discard". Shows names and dates only: the screen may be shared.
/* global FieldappOutbox, FieldappApp, FieldappText */
(function () {
  "use strict";
  if (!window.FieldappOutbox || !window.FieldappApp) { return; }
  var Outbox = window.FieldappOutbox;
  var text = window.FieldappText;
  var list = document.getElementById("outbox-list");
  var template = document.getElementById("outbox-item");
  var result = document.getElementById("outbox-result");
  var storage = document.getElementById("outbox-storage");
  var lang = document.body.dataset.lang;

  function when(iso) {
    return new Date(iso).toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
  }

  function render() {
    return Outbox.all().then(function (entries) {
      list.textContent = "";
      document.getElementById("outbox-empty").hidden = entries.length > 0;
      entries.forEach(function (entry) {
        var item = template.content.firstElementChild.cloneNode(true);
        item.dataset.uuid = entry.uuid;
        item.classList.add(entry.state);
        item.querySelector("[data-name]").textContent = entry.label || "—";
        item.querySelector("[data-kind]").textContent = text.kinds[entry.kind] || entry.kind;
        item.querySelector("[data-state]").textContent = text.states[entry.state];
        item.querySelector("[data-saved]").textContent = when(entry.saved_at);
        item.querySelector("[data-user]").textContent = entry.user || "";
        if (entry.state === "attention") {
          var message = item.querySelector("[data-message]");
          message.textContent = entry.message;
          message.hidden = false;
          var errors = item.querySelector("[data-errors]");
          (entry.problems || []).concat(Object.keys(entry.errors || {}).map(function (name) {
            return entry.errors[name];
          })).forEach(function (line) {
            errors.appendChild(Object.assign(document.createElement("li"), { textContent: line }));
          });
          errors.hidden = !errors.children.length;
          var correct = item.querySelector("[data-correct]");
          correct.hidden = false;
          if (entry.kind === "mark") {
            correct.textContent = text.open_checkin;
            correct.href = entry.back;
          } else {
            correct.textContent = text.correct;
            correct.href = entry.back + "#outbox=" + entry.uuid;
          }
        }
        item.querySelector("[data-discard]").addEventListener("click", function () {
          if (window.confirm(text.discard_confirm)) { Outbox.remove(entry.uuid).then(render); }
        });
        list.appendChild(item);
      });
    });
  }

  document.getElementById("send-now").addEventListener("click", function () {
    result.textContent = text.sending;
    FieldappApp.send().then(function (summary) {
      if (!summary || summary.stopped === "network") { result.textContent = text.not_reached; }
      else if (summary.stopped === "login") { result.textContent = text.login; }
      else { result.textContent = text.plural(text.sent, summary.sent); }
      return render();
    });
  });

  if (navigator.storage && navigator.storage.persisted) {
    navigator.storage.persisted().then(function (kept) {
      storage.textContent = text.storage_not_persistent;
      storage.hidden = kept;
    });
  }
  Outbox.listen(function (message) { if (message.type === "changed") { render(); } });
  render();
})();
