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
  var user = document.body.dataset.user;
  var page = location.pathname.replace(/^\/[^/]+\//, "/") + location.search;  // the same in every language
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

  function newUuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  function uuid() { return form.elements.uuid.value; }

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

  function draft() {
    return { uuid: uuid(), page: page, user: user, fields: fields() };
  }

  // A tab holds a Web Lock on the record it has open, so a second tab does not take up the same
  // draft (and the same uuid) and overwrite the first one's record.
  function hold(id) {
    if (navigator.locks) {
      navigator.locks.request("fieldapp-draft-" + id, function () { return new Promise(function () {}); });
    }
  }

  function free(id) {
    if (!navigator.locks) { return Promise.resolve(true); }
    return navigator.locks.query().then(function (state) {
      return !state.held.some(function (lock) { return lock.name === "fieldapp-draft-" + id; });
    });
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
      var described = wrapper.matches("fieldset") ? wrapper : input;
      described.setAttribute("aria-invalid", "true");
      var by = (described.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (by.indexOf(error.id) < 0) { described.setAttribute("aria-describedby", by.concat(error.id).join(" ")); }
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

  function refused(entry, answer) {
    busy = false;
    // Correcting a queued record: it stays in the outbox, marked, with the new reasons.
    var kept = correcting ? Promise.resolve() : Outbox.backToDraft(entry, draft());
    return kept.then(function () { showErrors(answer); });
  }

  function saved(entry, summary) {
    var answer = summary.results[entry.uuid];
    if (answer && answer.location) { return go(answer.location, text.saved); }
    if (answer) { return refused(entry, answer); }
    if (!summary.stopped) {  // another tab or the service worker sent it first: what came of it?
      return Outbox.get(entry.uuid).then(function (left) {
        if (left && left.state === "attention") { return refused(left, left); }
        return go(config.done || location.pathname, text.saved);
      });
    }
    FieldappApp.later(summary);
    return go(config.kind === "intake" ? location.pathname : config.done, text.offline_saved);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    clearTimeout(autosave);
    var entry = {
      uuid: uuid(), kind: config.kind, course: config.course || "", session: config.session || "",
      lang: lang, fields: fields(), label: label(), back: location.pathname + location.search,
      user: user,
    };
    Outbox.put(entry).then(function () {
      return Outbox.dropDraft(entry.uuid);
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
    if (correcting || busy) { return; }  // after Save, the record is the outbox's, not a draft
    clearTimeout(autosave);
    autosave = setTimeout(function () { Outbox.saveDraft(draft()); }, 400);
  });

  var cancel = form.querySelector(".form-actions a.button");
  if (cancel) {
    cancel.addEventListener("click", function (event) {
      event.preventDefault();
      clearTimeout(autosave);
      var leave = function () { location.assign(cancel.href); };
      (correcting ? Promise.resolve() : Outbox.dropDraft(uuid())).then(leave, leave);
    });
  }

  function fresh() {
    form.elements.uuid.value = newUuid();
    (config.today || []).forEach(function (name) {
      if (form.elements[name]) { form.elements[name].value = today(); }
    });
  }

  function offerDiscard() {
    var discard = document.createElement("button");
    discard.type = "button";
    discard.textContent = text.discard_draft;
    discard.onclick = function () {
      Outbox.dropDraft(uuid()).then(function () { location.assign(location.pathname + location.search); });
    };
    notice(text.draft_restored, discard);
  }

  // The first of this user's drafts of this page that no other tab has open, if any.
  function restorable(list) {
    return list.reduce(function (found, candidate) {
      return found.then(function (chosen) {
        return chosen || free(candidate.uuid).then(function (ok) { return ok ? candidate : null; });
      });
    }, Promise.resolve(null));
  }

  // What the form opens with: a new record with a uuid made now (a page kept by the service
  // worker must not hand out the same uuid twice), unless a draft or a queued record to correct
  // takes its place.
  if (form.dataset.posted) { return; }  // the server's answer to a post: its values stay
  fresh();
  if (correcting) {
    Outbox.get(correcting).then(function (entry) {
      if (!entry) { correcting = null; return hold(uuid()); }  // sent or discarded meanwhile
      fill(entry.fields);
      showErrors(entry);
    });
    return;
  }
  Outbox.drafts(page, user).then(restorable).then(function (kept) {
    if (kept) {
      fill(kept.fields);
      offerDiscard();
    }
    hold(uuid());
  }, function () { hold(uuid()); });
})();
