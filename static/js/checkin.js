// Attendance check-in: a tap saves at once in the background and the row shows the saved mark.
// Without this script every tap is an ordinary form post and the page reloads.
(function () {
  "use strict";
  var form = document.getElementById("checkin");
  if (!form || !window.fetch) { return; }
  var token = form.querySelector("input[name=csrf_token]").value;
  var status = document.getElementById("checkin-status");
  var filter = document.querySelector("[data-roster-filter]");
  var rows = Array.prototype.slice.call(form.querySelectorAll("li[data-name]"));

  function fold(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^0-9a-z]+/g, " ").trim();
  }

  function show(row, mark, revision) {
    row.dataset.revision = revision;
    row.querySelectorAll("button.mark").forEach(function (button) {
      var parts = button.value.split(":");
      button.value = parts[0] + ":" + revision + ":" + parts[2];
      button.setAttribute("aria-pressed", parts[2] === mark ? "true" : "false");
    });
  }

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || button.name !== "mark") { return; }
    event.preventDefault();
    var row = button.closest("li");
    var parts = button.value.split(":");
    var previous = row.querySelector("button[aria-pressed=true]");
    show(row, parts[2], row.dataset.revision);  // instant feedback; the answer confirms it
    var body = new URLSearchParams({ mark: button.value });
    fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": token },
    }).then(function (response) {
      return response.json().then(function (answer) {
        show(row, answer.status, answer.revision);
        status.textContent = answer.ok ? "" : answer.error.message;
      });
    }).catch(function () {
      show(row, previous ? previous.value.split(":")[2] : "", row.dataset.revision);
      status.textContent = status.dataset.offline;
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.dataset.confirm)) { event.preventDefault(); }
    });
  });

  if (filter) {
    filter.addEventListener("input", function () {
      var words = fold(filter.value).split(" ").filter(Boolean);
      rows.forEach(function (row) {
        var name = row.dataset.name;
        row.hidden = !words.every(function (w) { return name.indexOf(w) >= 0; });
      });
    });
  }
})();
