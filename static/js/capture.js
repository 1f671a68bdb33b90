// New-record forms that work offline (intake, participant registration): answers are kept as a
// draft on the device while typed; Save puts the record in the outbox first and then sends it,
// so a record is on disk before anything can go wrong. Stored: go to the record. Refused: the
// server's messages are shown on the fields. Server unreachable: it waits on the device.
// Without this script (or without storage on the device) the form posts as usual.
/* global FieldappOutbox, FieldappApp, FieldappText */
(function () {
  "use strict";
  var form = document.getElementById("record-form");
  if (!form || !form.dataset.outbox || !window.FieldappOutbox || !window.FieldappApp) { return; }
  var config = JSON.parse(form.dataset.outbox);
  var Outbox = window.FieldappOutbox;
  var text = window.FieldappText;
  var lang = document.body.dataset.lang;
  var key = location.pathname.replace(/^\/[^/]+\//, "/") + location.search;  // the same in every language
  var correcting = (location.hash.match(/^#outbox=([0-9a-f-]{36})$/) || [])[1];
  var busy = false;
  var autosave = null;

  function fields() {
    var data = {};
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrf_token") { (data[name] = data[name] || []).push(value); }
    });
    return data;
  }

  function fill(data) {
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (input) {
      if (input.name === "csrf_token") { return; }
      var values = data[input.name] || [];
      if (input.type === "radio" || input.type === "checkbox") {
        input.checked = values.indexOf(input.value) >= 0;
      } else if (input.type !== "hidden" || values.length) {
        input.value = values[0] || "";
      }
    });
    form.dispatchEvent(new Event("change"));  // form.js shows the questions that now apply
  }

  function today() {
    var d = new Date();
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" +
      String(d.getDate()).padStart(2, "0");
  }

  function notice(message, action) {
    var box = document.getElementById("capture-notice");
    box.textContent = message + " ";
    box.hidden = false;
    if (action) { box.appendChild(action); }
  }

  function label() {
    return (config.label || []).map(function (name) {
      var input = form.elements[name];
      return input && input.value ? input.value.trim() : "";
    }).filter(Boolean).join(" ");
  }

  // The server's refusal, shown as the server itself shows it (templates/_fields.html).
  function showErrors(answer) {
    form.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    form.querySelectorAll("p.error[id^='e-']").forEach(function (el) { el.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var old = document.getElementById("error-summary");
    if (old) { old.remove(); }
    var summary = document.createElement("div");
    summary.className = "error-summary";
    summary.id = "error-summary";
    summary.tabIndex = -1;
    summary.setAttribute("role", "alert");
    var heading = document.createElement("h2");
    heading.textContent = text.errors_heading;
    var list = document.createElement("ul");
    summary.append(heading, list);
    var problems = (answer.problems && answer.problems.length) ? answer.problems : [];
    if (!problems.length && !Object.keys(answer.errors || {}).length) { problems = [answer.message]; }
    problems.forEach(function (message) {
      var item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
    });
    Object.keys(answer.errors || {}).forEach(function (name) {
      var wrapper = document.getElementById("w-" + name);
      var input = form.querySelector("[name='" + name + "']");
      if (!wrapper || !input) { return; }
      var error = document.createElement("p");
      error.className = "error";
      error.id = "e-" + name;
      error.textContent = answer.errors[name];
      var anchor = wrapper.querySelector(".hint") || wrapper.querySelector("legend, label");
      anchor.after(error);
      wrapper.classList.add("has-error");
      (wrapper.matches("fieldset") ? wrapper : input).setAttribute("aria-invalid", "true");
      var item = document.createElement("li");
      var title = wrapper.querySelector("legend, label").firstChild.textContent.trim();
      item.appendChild(Object.assign(document.createElement("a"), {
        href: "#" + input.id, textContent: title + ": " + answer.errors[name],
      }));
      list.appendChild(item);
    });
    form.before(summary);
    summary.focus();
  }

  function go(url, message) {
    sessionStorage.setItem("fieldapp-notice", message);
    location.assign(url);
  }

  function saved(entry, summary) {
    var answer = summary.results[entry.uuid];
    if (answer && answer.location) { return go(answer.location, text.saved); }
    if (answer) {  // refused: back in the officer's hands, with the server's reasons
      busy = false;
      return Outbox.remove(entry.uuid).then(function () {
        if (!correcting) { return Outbox.saveDraft(key, { fields: entry.fields }); }
      }).then(function () { showErrors(answer); });
    }
    FieldappApp.later(summary);
    if (!summary.stopped) { return go(config.done || location.pathname, text.saved); }  // sent elsewhere
    return go(config.kind === "intake" ? location.pathname : config.done, text.offline_saved);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    clearTimeout(autosave);
    var entry = {
      uuid: form.elements.uuid.value, kind: config.kind, course: config.course || "",
      session: config.session || "", lang: lang, fields: fields(), label: label(),
      back: location.pathname + location.search, user: document.body.dataset.user,
    };
    Outbox.put(entry).then(function () {
      return Outbox.dropDraft(key);
    }).then(function () {
      return Outbox.replay(entry.uuid);
    }).then(function (summary) {
      return saved(entry, summary);
    }).catch(function (error) {
      busy = false;
      if (error && error.name === "QuotaExceededError") {
        FieldappApp.storageFull();
        return notice(text.storage_full);
      }
      form.submit();  // no storage on this device: the server takes the form directly
    });
  });

  form.addEventListener("input", function () {
    if (correcting) { return; }
    clearTimeout(autosave);
    autosave = setTimeout(function () { Outbox.saveDraft(key, { fields: fields() }); }, 400);
  });

  var cancel = form.querySelector(".form-actions a.button");
  if (cancel) {
    cancel.addEventListener("click", function (event) {
      event.preventDefault();
      clearTimeout(autosave);
      var leave = function () { location.assign(cancel.href); };
      (correcting ? Promise.resolve() : Outbox.dropDraft(key)).then(leave, leave);
    });
  }

  function fresh() {
    if (window.crypto && crypto.randomUUID) { form.elements.uuid.value = crypto.randomUUID(); }
    (config.today || []).forEach(function (name) {
      if (form.elements[name]) { form.elements[name].value = today(); }
    });
  }

  // What the form opens with: a new record with a uuid made now (a page kept by the service
  // worker must not hand out the same uuid twice), unless a draft or a queued record to correct
  // takes its place.
  if (form.dataset.posted) { return; }  // the server's answer to a post: its values stay
  if (!correcting) { fresh(); }
  (correcting ? Outbox.get(correcting) : Outbox.getDraft(key)).then(function (kept) {
    if (!kept) { return; }
    fill(kept.fields);
    if (correcting) { return showErrors(kept); }
    var discard = document.createElement("button");
    discard.type = "button";
    discard.textContent = text.discard_draft;
    discard.onclick = function () {
      Outbox.dropDraft(key).then(function () { location.assign(location.pathname + location.search); });
    };
    notice(text.draft_restored, discard);
  });
})();
