// The device's outbox and drafts (IndexedDB), and the replay of queued records to the field
// server's /<lang>/api/outbox (fieldapp/web/api.py, docs/offline.md). Pages and the service
// worker both load this file and share one database.
//
// An entry is keyed by its record's uuid, so saving the same record again replaces it: a record
// is queued once. Each write is a transaction with strict durability (on disk before it resolves).
// Replays take a Web Lock, so two tabs (or a tab and the service worker) never send at once; the
// server's resubmission contract makes a resend a `duplicate`, never a second record.
(function (scope) {
  "use strict";
  var NAME = "fieldapp";
  var CHANNEL = "fieldapp-outbox";
  var LOCK = "fieldapp-outbox-replay";
  var BATCH = 25;
  var freshDatabase = false;
  var opening = null;
  var channel = "BroadcastChannel" in scope ? new BroadcastChannel(CHANNEL) : null;

  function open() {
    if (!opening) {
      opening = new Promise(function (resolve, reject) {
        var request = indexedDB.open(NAME, 1);
        request.onupgradeneeded = function (event) {
          freshDatabase = event.oldVersion === 0;
          request.result.createObjectStore("outbox", { keyPath: "uuid" }).createIndex("state", "state");
          request.result.createObjectStore("drafts", { keyPath: "key" });
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      }).catch(function (error) { opening = null; throw error; });
    }
    return opening;
  }

  // One transaction; `work(store, done)` issues its requests and calls done(value) from one.
  // Over several stores (a list), `work` gets the transaction instead of a store.
  function transact(stores, mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(stores, mode, { durability: "strict" });
        var value;
        work(typeof stores === "string" ? tx.objectStore(stores) : tx, function (v) { value = v; });
        tx.oncomplete = function () { resolve(value); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error || new Error("aborted")); };
      });
    });
  }

  function all() {
    return transact("outbox", "readonly", function (store, done) {
      store.getAll().onsuccess = function (e) {
        done(e.target.result.sort(function (a, b) { return a.saved_at < b.saved_at ? -1 : 1; }));
      };
    });
  }

  function get(uuid) {
    return transact("outbox", "readonly", function (store, done) {
      store.get(uuid).onsuccess = function (e) { done(e.target.result); };
    });
  }

  function notify(message) {
    if (channel) { channel.postMessage(message); }
  }

  // Queue a record (replacing a queued version of it): resolves once it is on disk.
  function put(entry) {
    entry.state = "waiting";
    entry.stamp = Date.now() + ":" + Math.random();
    entry.saved_at = new Date().toISOString();
    delete entry.message;
    delete entry.errors;
    return transact("outbox", "readwrite", function (store) { store.put(entry); }).then(function () {
      notify({ type: "changed" });
      if (scope.navigator.storage && navigator.storage.persist) { navigator.storage.persist(); }
      return entry;
    });
  }

  // Change or drop an entry only if it is still the version that was sent: a record saved again
  // meanwhile is a newer version and must be sent too.
  function settle(sent, changes) {
    return transact("outbox", "readwrite", function (store) {
      store.get(sent.uuid).onsuccess = function (e) {
        var current = e.target.result;
        if (!current || current.stamp !== sent.stamp) { return; }
        if (changes) { store.put(Object.assign(current, changes)); } else { store.delete(sent.uuid); }
      };
    });
  }

  // Drop an entry only if it is still the version the page holds (`entry.stamp`).
  function removeIf(entry) {
    return settle(entry, null).then(function () { notify({ type: "changed" }); });
  }

  // A record the server refused while the officer is at the form: it becomes the form's draft
  // again, in the same transaction, so it is in one place or the other, never in neither.
  function backToDraft(entry, draft) {
    return transact(["outbox", "drafts"], "readwrite", function (tx) {
      tx.objectStore("drafts").put(draft);
      var outbox = tx.objectStore("outbox");
      outbox.get(entry.uuid).onsuccess = function (e) {
        if (e.target.result && e.target.result.stamp === entry.stamp) { outbox.delete(entry.uuid); }
      };
    }).then(function () { notify({ type: "changed" }); });
  }

  function remove(uuid) {
    return transact("outbox", "readwrite", function (store) { store.delete(uuid); }).then(function () {
      notify({ type: "changed" });
    });
  }

  // Counted by the index: every page asks at each change, whatever the outbox's size.
  function counts() {
    return transact("outbox", "readonly", function (store, done) {
      var found = {};
      ["waiting", "attention"].forEach(function (state) {
        store.index("state").count(state).onsuccess = function (e) {
          found[state] = e.target.result;
          if (Object.keys(found).length === 2) {
            done({ waiting: found.waiting, attention: found.attention,
                   total: found.waiting + found.attention });
          }
        };
      });
    });
  }

  // Drafts are keyed by their record's uuid; `draft.page` and `draft.user` say where they belong.
  function saveDraft(draft) {
    draft.key = draft.uuid;
    draft.saved_at = new Date().toISOString();
    return transact("drafts", "readwrite", function (store) { store.put(draft); });
  }

  // This user's drafts of one form page, newest first.
  function drafts(page, user) {
    return transact("drafts", "readonly", function (store, done) {
      store.getAll().onsuccess = function (e) {
        done(e.target.result.filter(function (d) { return d.page === page && d.user === user; })
          .sort(function (a, b) { return a.saved_at < b.saved_at ? 1 : -1; }));
      };
    });
  }

  function dropDraft(key) {
    return transact("drafts", "readwrite", function (store) { store.delete(key); });
  }

  function Stop(reason) { this.reason = reason; }  // "login" or "network": try again later

  // A request that hangs would hold the lock, and every save behind it: give up after a while.
  function timed(url, options) {
    if (!("AbortController" in scope)) { return fetch(url, options); }
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, 20000);
    options.signal = controller.signal;
    return fetch(url, options).then(function (response) {
      clearTimeout(timer);
      return response;
    }, function (error) { clearTimeout(timer); throw error; });
  }

  // What stops a replay for now: 401, the login ended; 403, an account that may not capture (an
  // admin) is logged in; a server error or a busy server: try again later.
  function checked(response) {
    if (response.status === 401 || response.status === 403) { throw new Stop("login"); }
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      throw new Stop("network");
    }
    return response;
  }

  function token(lang) {
    return timed("/" + lang + "/api/token", {
      credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store",
    }).then(function (response) {
      if (!checked(response).ok) { throw new Stop("network"); }
      return response.json();
    }, function () { throw new Stop("network"); }).then(function (body) { return body.token; });
  }

  function wire(entry) {
    return { uuid: entry.uuid, kind: entry.kind, course: entry.course, session: entry.session,
             fields: entry.fields };
  }

  function post(lang, tokenValue, entries) {
    return timed("/" + lang + "/api/outbox", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": tokenValue },
      body: JSON.stringify({ records: entries.map(wire) }),
    }).then(function (response) {
      checked(response);
      return response.json().then(function (body) { return { status: response.status, body: body }; },
        function () { throw new Stop("network"); });  // a proxy's page, not the server's answer
    }, function () { throw new Stop("network"); });
  }

  // What the server said of one record: sent records leave the outbox, the others wait for the
  // officer with the server's message.
  function apply(entry, result, summary) {
    summary.results[entry.uuid] = result;
    var sent = result.outcome === "stored" || result.outcome === "duplicate";
    var changes = sent ? null : {
      state: "attention", outcome: result.outcome, code: result.code, message: result.message,
      errors: result.errors || {}, problems: result.problems || [],
      server_revision: result.revision, server_status: result.status,
    };
    return settle(entry, changes).then(function () {
      summary[sent ? "sent" : "attention"] += 1;
      notify({ type: "result", uuid: entry.uuid, result: result });
    });
  }

  // Send a list of entries of one language; the request is refused as a whole only when it is
  // malformed or stale (CSRF), then each record goes alone, so one bad record blocks nothing.
  function sendBatch(lang, tokenValue, entries, summary) {
    return post(lang, tokenValue, entries).then(function (answer) {
      if (answer.body.ok) {
        return answer.body.results.reduce(function (chain, result, i) {
          return chain.then(function () { return apply(entries[i], result, summary); });
        }, Promise.resolve());
      }
      if (answer.body.error && answer.body.error.code === "csrf") { throw new Stop("network"); }
      if (entries.length > 1) {
        return entries.reduce(function (chain, entry) {
          return chain.then(function () { return sendBatch(lang, tokenValue, [entry], summary); });
        }, Promise.resolve());
      }
      return apply(entries[0], { outcome: "rejected", code: answer.body.error.code,
                                 message: answer.body.error.message }, summary);
    });
  }

  function sendAll(only) {
    var summary = { sent: 0, attention: 0, waiting: 0, stopped: null, results: {} };
    return all().then(function (entries) {
      var queue = entries.filter(function (e) {
        return e.state === "waiting" && (!only || e.uuid === only);
      });
      var langs = {};
      queue.forEach(function (e) { (langs[e.lang] = langs[e.lang] || []).push(e); });
      return Object.keys(langs).reduce(function (chain, lang) {
        return chain.then(function () {
          return token(lang).then(function (tokenValue) {
            var list = langs[lang];
            var batches = [];
            for (var i = 0; i < list.length; i += BATCH) { batches.push(list.slice(i, i + BATCH)); }
            return batches.reduce(function (inner, batch) {
              return inner.then(function () { return sendBatch(lang, tokenValue, batch, summary); });
            }, Promise.resolve());
          });
        });
      }, Promise.resolve());
    }).catch(function (error) {
      if (!(error instanceof Stop)) { throw error; }
      summary.stopped = error.reason;
    }).then(counts).then(function (now) {
      summary.waiting = now.waiting;
      summary.total_attention = now.attention;
      notify({ type: "changed", stopped: summary.stopped });
      return summary;
    });
  }

  // Send what is waiting (or only the record `only`); resolves to
  // {sent, attention, waiting, total_attention, stopped: null | "login" | "network",
  //  results: {uuid: the server's answer}}.
  function replay(only) {
    if (scope.navigator.locks) {
      return navigator.locks.request(LOCK, function () { return sendAll(only); });
    }
    return sendAll(only);
  }

  // Called with each message about the outbox, from this page, other tabs or the service worker.
  function listen(callback) {
    if (!("BroadcastChannel" in scope)) { return; }
    new BroadcastChannel(CHANNEL).onmessage = function (event) { callback(event.data); };
  }

  scope.FieldappOutbox = {
    open: open, all: all, get: get, put: put, remove: remove, removeIf: removeIf, counts: counts,
    replay: replay, listen: listen, saveDraft: saveDraft, drafts: drafts, dropDraft: dropDraft,
    backToDraft: backToDraft,
    wasFresh: function () { return freshDatabase; },
  };
})(self);
