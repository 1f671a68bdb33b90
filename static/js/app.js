// On every page: install the service worker and offer its updates, show what waits on this
// device, and send it whenever the server may be back — at load, on the `online` event, on a
// timer with exponential backoff and jitter, and through Background Sync.
/* global FieldappOutbox */
(function () {
  "use strict";
  var body = document.body;
  var text = JSON.parse(document.getElementById("app-text").textContent);
  var lang = body.dataset.lang;
  var status = document.getElementById("device-status");
  var Outbox = window.FieldappOutbox;
  var attempt = 0;
  var timer = null;
  var stopped = null;
  var storageProblem = null;

  window.FieldappText = text;
  text.plural = function (forms, n) { return plural(forms, n); };

  // The catalogs give two forms (one, other), as English and Spanish have.
  var rules = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
  function plural(forms, n) {
    var one = rules ? rules.select(n) === "one" : n === 1;
    return forms[one ? 0 : 1].replace("%(num)d", n);
  }

  function link(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  }

  // The banner under the menu: what is waiting, what needs attention, and why nothing is sent.
  function show(counts) {
    var parts = [];
    if (storageProblem) { parts.push(storageProblem); }
    if (counts.waiting) { parts.push(plural(text.waiting, counts.waiting)); }
    if (counts.attention) { parts.push(plural(text.attention, counts.attention)); }
    if (counts.total && stopped === "login") { parts.push(text.login); }
    var said = parts.join(" ") + "|" + stopped;
    if (said === status.dataset.said) { return; }  // a screen reader hears each change once
    status.dataset.said = said;
    status.textContent = "";
    status.hidden = parts.length === 0;
    status.className = "banner" + (counts.attention || storageProblem || stopped === "login" ? " warn" : "");
    if (status.hidden) { return; }
    status.appendChild(document.createTextNode(parts.join(" ") + " "));
    if (counts.total && stopped === "login") {
      status.appendChild(link("/" + lang + "/login?next=" + encodeURIComponent("/" + lang + "/outbox"), text.log_in));
    } else if (counts.total && location.pathname !== "/" + lang + "/outbox") {
      status.appendChild(link("/" + lang + "/outbox", text.open_outbox));
    }
  }

  function refresh() {
    return Outbox.counts().then(function (counts) {
      // A cookie survives when a browser evicts site storage: it tells that records were lost.
      document.cookie = "fieldapp_outbox=" + counts.total + "; path=/; max-age=31536000; samesite=strict";
      show(counts);
      return counts;
    });
  }

  function schedule() {
    clearTimeout(timer);
    var ceiling = Math.min(5000 * Math.pow(2, attempt), 5 * 60 * 1000);
    attempt += 1;
    timer = setTimeout(send, ceiling / 2 + Math.random() * ceiling / 2);  // jitter: tablets differ
  }

  function send() {
    clearTimeout(timer);
    return Outbox.replay().then(function (summary) {
      stopped = summary.stopped;
      if (summary.stopped === "network" && summary.waiting) { schedule(); } else { attempt = 0; }
      return refresh().then(function () { return summary; });
    }, function () {
      schedule();
      return null;
    });
  }

  function checkStorage() {
    var had = (document.cookie.match(/(?:^|; )fieldapp_outbox=(\d+)/) || [])[1];
    return Outbox.open().then(function () {
      if (had && Number(had) > 0 && Outbox.wasFresh()) { storageProblem = text.storage_evicted; }
    }, function () {
      storageProblem = text.storage_unavailable;
      throw new Error("no storage");
    });
  }

  function serviceWorker() {
    if (!("serviceWorker" in navigator)) { return; }
    var banner = document.getElementById("app-update");
    var reloading = false;
    navigator.serviceWorker.register("/sw.js").then(function (registration) {
      function offer(worker) {
        if (!worker || !navigator.serviceWorker.controller) { return; }  // a first install
        banner.hidden = false;
        banner.querySelector("[data-reload]").onclick = function () {
          reloading = true;
          worker.postMessage({ type: "skip-waiting" });
        };
      }
      offer(registration.waiting);
      registration.addEventListener("updatefound", function () {
        var worker = registration.installing;
        worker.addEventListener("statechange", function () {
          if (worker.state === "installed") { offer(worker); }
        });
      });
    });
    if (body.dataset.user) {  // keep this user's working pages up to date on the device
      var login = sessionStorage.getItem("fieldapp-user") !== body.dataset.user;  // someone new
      sessionStorage.setItem("fieldapp-user", body.dataset.user);
      navigator.serviceWorker.ready.then(function (registration) {
        registration.active.postMessage({ type: "warm", login: login });
      });
    }
    navigator.serviceWorker.addEventListener("controllerchange", function () {
      if (reloading) { location.reload(); }  // only the page where the officer chose to
    });
    document.querySelectorAll("form[action$='/logout']").forEach(function (form) {
      form.addEventListener("submit", function () {
        var worker = navigator.serviceWorker.controller;
        if (worker) { worker.postMessage({ type: "logout" }); }
      });
    });
  }

  // Ask the browser to wake the service worker when the connection is back.
  function backgroundSync() {
    if (!("serviceWorker" in navigator)) { return; }
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.sync) { return registration.sync.register("fieldapp-outbox"); }
    }).catch(function () {});
  }

  // After a page queued a record and could not send it: try again on the usual schedule.
  function later(summary) {
    stopped = summary ? summary.stopped : "network";
    backgroundSync();
    if (stopped === "network") { schedule(); }
    return refresh();
  }

  window.FieldappApp = {
    send: send, later: later,
    storageFull: function () { storageProblem = text.storage_full; return refresh(); },
  };

  // What the previous page said before it moved on (capture.js saves, then goes to the record).
  var said = sessionStorage.getItem("fieldapp-notice");
  if (said) {
    sessionStorage.removeItem("fieldapp-notice");
    var flash = document.createElement("p");
    flash.className = "flash success";
    flash.setAttribute("role", "status");
    flash.textContent = said;
    document.getElementById("main").prepend(flash);
  }

  serviceWorker();
  checkStorage().then(function () {
    Outbox.listen(function (message) {
      if (message.type === "changed") {
        if (message.stopped !== undefined) { stopped = message.stopped; }
        refresh();
      }
    });
    window.addEventListener("online", function () { attempt = 0; send(); });
    return refresh().then(function (counts) {
      if (!counts.waiting) { return null; }
      backgroundSync();
      if (body.dataset.user) { return send(); }
      stopped = "login";
      return refresh();
    });
  }).catch(function () { show({ waiting: 0, attention: 0, total: 0 }); });
})();
