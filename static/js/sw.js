// The service worker, served at /sw.js (fieldapp/web/pwa.py prepends SETTINGS: this release's
// version, its static files, the languages and the outbox script). It keeps the pages needed to
// work with the server unreachable, and sends the outbox in the background (Background Sync).
// Pages with personal data beyond today's check-in rosters (record lists, record pages) are
// never kept. docs/offline.md explains the strategy.
/* global SETTINGS, FieldappOutbox */
importScripts(SETTINGS.outbox);

var STATIC = "fieldapp-static-" + SETTINGS.version;
var PAGES = "fieldapp-pages-" + SETTINGS.version;
var LANGS = SETTINGS.languages;
var UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
// The pages kept for working offline: home, new intake, the outbox, the offline page, and the
// check-in and walk-in registration of a session.
var KEPT = new RegExp("^/(" + LANGS.join("|") + ")/(|intake/new|outbox|offline|sessions/" + UUID +
                      "/checkin|courses/" + UUID + "/participants/new)$");
var TODAY_ONLY = /\/(checkin|participants\/new)$/;
var warmed = 0;  // when the working pages were last refreshed (warm)
var missing = [];  // the working pages that refresh could not fetch

// Fetched without the login cookie: the kept offline page names no one.
function offlinePages() {
  return LANGS.map(function (lang) { return new Request("/" + lang + "/offline", { credentials: "omit" }); });
}

function dropPages() {  // every release's: a waiting new worker may have kept some too
  missing = [];  // nor fetched again for whoever logs in next
  return caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) { return name.indexOf("fieldapp-pages-") === 0; })
      .map(function (name) { return caches.delete(name); }));
  }).then(function () {
    return caches.open(PAGES);
  }).then(function (cache) { return cache.addAll(offlinePages()); });
}

// Fetch and keep the pages this user works with (web/api.py `shell`); drop the rosters of
// sessions that are no longer today's. Anonymous: nothing to keep but the offline pages.
// A page a refresh could not fetch (the server busy, or gone for a moment) would be missing
// offline: it alone is tried again at the next page load, not five minutes later.
function keep(cache, url) {
  return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (page) {
    if (!page.ok || page.redirected) { throw new Error("not kept"); }
    return cache.put(url, page);
  }).catch(function () { missing.push(url); });
}

function retryMissing() {
  if (!missing.length) { return Promise.resolve(); }
  var urls = missing;
  missing = [];
  return caches.open(PAGES).then(function (cache) {
    return Promise.all(urls.map(function (url) { return keep(cache, url); }));
  });
}

function warm(force) {
  if (!force && Date.now() - warmed < 5 * 60 * 1000) { return retryMissing(); }
  warmed = Date.now();
  missing = [];
  function again() { warmed = 0; }  // the list of pages itself: all of it at the next page load
  return fetch("/" + LANGS[0] + "/api/shell", {
    credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store",
  }).then(function (response) {
    if (response.status === 401) { return dropPages().then(function () { return null; }); }  // logged out
    if (!response.ok) { again(); return null; }
    return response.json();
  }).then(function (shell) {
    if (!shell) { return; }
    return caches.open(PAGES).then(function (cache) {
      var wanted = shell.pages;
      var fetched = wanted.map(function (url) { return keep(cache, url); });
      var pruned = cache.keys().then(function (requests) {
        return Promise.all(requests.map(function (request) {
          var url = new URL(request.url);
          var path = url.pathname + url.search;
          if (TODAY_ONLY.test(url.pathname) && wanted.indexOf(path) < 0) { return cache.delete(request); }
        }));
      });
      return Promise.all(fetched.concat([pruned]));
    });
  }).catch(again);  // unreachable: keep what is kept
}

self.addEventListener("install", function (event) {
  event.waitUntil(Promise.all([
    caches.open(STATIC).then(function (cache) { return cache.addAll(SETTINGS.assets); }),
    caches.open(PAGES).then(function (cache) { return cache.addAll(offlinePages()); }),
  ]).then(function () { return warm(true); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) {
      return name.indexOf("fieldapp-") === 0 && name !== STATIC && name !== PAGES;
    }).map(function (name) { return caches.delete(name); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("message", function (event) {
  var type = event.data && event.data.type;
  if (type === "skip-waiting") {
    self.skipWaiting();
  } else if (type === "warm") {  // at most every five minutes, or at once after a login
    event.waitUntil(warm(event.data.login));
  } else if (type === "logout") {  // the next person on this device must not see these pages
    warmed = 0;
    event.waitUntil(dropPages());
  }
});

// Versioned static files never change: the kept copy, else the network.
function staticFile(request) {
  return caches.match(request, { cacheName: STATIC }).then(function (hit) {
    return hit || fetch(request).then(function (response) {
      if (response.ok && new URL(request.url).searchParams.has("v")) {
        var copy = response.clone();
        caches.open(STATIC).then(function (cache) { cache.put(request, copy); });
      }
      return response;
    });
  });
}

// Pages: the network first (always the freshest), the kept copy when it cannot be reached.
function page(request) {
  var url = new URL(request.url);
  var key = url.pathname + url.search;
  var kept = KEPT.test(url.pathname);
  return fetch(request).then(function (response) {
    if (kept && response.ok && !response.redirected && response.type === "basic") {
      var copy = response.clone();
      caches.open(PAGES).then(function (cache) {
        // A check-in is kept only for today's sessions (warm() adds them): refreshed, not added.
        var known = TODAY_ONLY.test(url.pathname) ? cache.match(key, { ignoreVary: true }) : Promise.resolve(true);
        return known.then(function (hit) { if (hit) { return cache.put(key, copy); } });
      });
    }
    return response;
  }).catch(function () {
    return caches.open(PAGES).then(function (cache) {
      return (kept ? cache.match(key, { ignoreVary: true }) : Promise.resolve(null)).then(function (hit) {
        if (hit) { return hit; }
        var lang = url.pathname.split("/")[1];
        return cache.match("/" + (LANGS.indexOf(lang) >= 0 ? lang : LANGS[0]) + "/offline",
                           { ignoreVary: true });
      });
    }).then(function (response) {
      return response || new Response("Offline", { status: 503, headers: { "Content-Type": "text/plain" } });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }  // saves go through the page's outbox
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(staticFile(request));
  } else if (request.mode === "navigate") {
    event.respondWith(page(request));
  }
});

// Background Sync: the browser wakes the worker when the connection is back, even with no
// fieldapp page open. A failure makes the browser try again later.
self.addEventListener("sync", function (event) {
  if (event.tag !== "fieldapp-outbox") { return; }
  event.waitUntil(FieldappOutbox.replay().then(function (summary) {
    if (summary.stopped === "network") { throw new Error("server unreachable"); }
  }));
});
