/*
 * download-queue.js: a small browser client for the download queue. No build step, no deps.
 *
 *   const place = joinQueue(fileId, {
 *     onPosition(view) {},  // {position, waiting, active, capacity, eta_seconds, mode}; position null:
 *                           // pre-queued for a release (release_at, prequeued)
 *     onReady(ready) {},    // {download_url, admit_deadline, token}: start the download now
 *     onProgress(p) {},     // {state, bytes, size, rate_bytes_per_second, eta_seconds}: about 1/s
 *     onDone(done) {},      // {bytes, size, sha256}: the client acknowledged every byte
 *     onError(error) {},    // {code, message, retry_after?}: the place is gone (or never given)
 *     onState(state) {},    // "joining" | "waiting" | "reconnecting"
 *   });
 *   place.leave();          // give the place (or the slot) back: leaving, or cancelling a download
 *
 * After `ready`, the client follows the download's progress as the server counts it (what the
 * browser acknowledged) when onProgress or onDone is given. Types: download-queue.d.ts.
 *
 * The token is kept in sessionStorage, so a reload (or a dropped connection) re-attaches
 * to the same place while the server keeps it (WAIT_GRACE). EventSource reconnects by
 * itself; the server keeps the place across reconnects. A connection that died silently (a
 * phone's radio, a NAT that forgot it, a frozen tab) is noticed: the page reconnects at once
 * when it becomes visible again or the browser comes back online, and whenever nothing (not even
 * a heartbeat) arrived for twice the server's heartbeat interval.
 */
(function (global) {
  "use strict";

  var PREFIX = "download-queue:file:";
  var HEARTBEAT_SECONDS = 15;  // until the server's first heartbeat says its interval

  function storage() {
    try { return global.sessionStorage; } catch (e) { return null; }
  }

  function savedTicket(fileId) {
    var store = storage();
    var raw = store && store.getItem(PREFIX + fileId);
    if (!raw) return null;
    try {
      var ticket = JSON.parse(raw);
      if (Date.parse(ticket.expires_at) > Date.now() + 5000) return ticket;
    } catch (e) { /* unreadable: start over */ }
    store.removeItem(PREFIX + fileId);
    return null;
  }

  function forgetTicket(fileId) {
    var store = storage();
    if (store) store.removeItem(PREFIX + fileId);
  }

  function issueToken(fileId, apiKey) {
    var headers = apiKey ? { Authorization: "Bearer " + apiKey } : {};
    return fetch("/api/v1/files/" + encodeURIComponent(fileId) + "/tokens", { method: "POST", headers: headers })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var error = body.error || { code: "http_" + response.status, message: "The server said " + response.status + "." };
            if (!error.retry_after && response.headers.get("Retry-After")) {
              error.retry_after = Number(response.headers.get("Retry-After"));
            }
            throw error;
          }
          return body;
        });
      });
  }

  function joinQueue(fileId, handlers, options) {
    handlers = handlers || {};
    options = options || {};
    var call = function (name, value) { if (typeof handlers[name] === "function") handlers[name](value); };
    var source = null;
    var ticket = null;
    var finished = false;

    var waiting = false;  // following the place (not yet ready): the stream the watchdog guards
    var heard = Date.now();  // when the stream last delivered anything
    var heartbeat = HEARTBEAT_SECONDS;
    var watchdog = null;

    function finish() {
      finished = true;
      stopWatching();
      if (source) source.close();
    }

    function stopWatching() {
      waiting = false;
      if (watchdog !== null) clearInterval(watchdog);
      watchdog = null;
      global.removeEventListener("online", reconnect);
      global.document.removeEventListener("visibilitychange", onVisible);
    }

    function reconnect() {  // a fresh stream now, instead of trusting one that may be dead
      if (finished || !waiting) return;
      source.close();
      call("onState", "reconnecting");
      listen();
    }

    function onVisible() { if (global.document.visibilityState === "visible") reconnect(); }

    function listen() {
      if (!waiting) {
        waiting = true;
        global.addEventListener("online", reconnect);
        global.document.addEventListener("visibilitychange", onVisible);
        watchdog = setInterval(function () {
          if (Date.now() - heard > 2 * heartbeat * 1000) reconnect();
        }, 1000);
      }
      heard = Date.now();
      var mine = source = new EventSource(ticket.queue_url);
      var on = function (name, handle) {  // events of a stream that a reconnect replaced are ignored
        mine.addEventListener(name, function (event) { if (mine === source) handle(event); });
      };
      var hear = function () { heard = Date.now(); };
      on("open", function () { hear(); call("onState", "waiting"); });
      on("heartbeat", function (event) {
        hear();
        heartbeat = JSON.parse(event.data).every_seconds || HEARTBEAT_SECONDS;
      });
      on("position", function (event) {
        hear();
        call("onPosition", JSON.parse(event.data));
      });
      on("ready", function (event) {
        stopWatching();
        mine.close();
        var ready = JSON.parse(event.data);
        ready.token = ticket.token;
        ready.status_url = ticket.status_url;
        call("onReady", ready);
        if (!finished && (handlers.onProgress || handlers.onDone)) follow();
        else finish();
      });
      on("error", function (event) {
        if (event.data) {  // an error the server sent: the place is gone
          finish();
          var error = JSON.parse(event.data).error;
          if (error.code !== "queue_full") forgetTicket(fileId);
          call("onError", error);
        } else if (!finished) {  // the connection dropped: EventSource retries by itself
          call("onState", mine.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
          if (mine.readyState === EventSource.CLOSED) {
            setTimeout(function () { if (!finished && mine === source) listen(); }, 3000);
          }
        }
      });
    }

    function follow() {
      source = new EventSource(ticket.queue_url + "/progress");
      source.addEventListener("progress", function (event) { call("onProgress", JSON.parse(event.data)); });
      source.addEventListener("done", function (event) {
        finish();
        forgetTicket(fileId);
        call("onDone", JSON.parse(event.data));
      });
      source.addEventListener("error", function (event) {
        if (event.data) {
          finish();
          forgetTicket(fileId);
          call("onError", JSON.parse(event.data).error);
        }  // else the connection dropped: EventSource reconnects and the count goes on
      });
    }

    var place = {
      get token() { return ticket && ticket.token; },
      close: finish,
      forget: function () { forgetTicket(fileId); },
      leave: function () {
        finish();
        forgetTicket(fileId);
        if (!ticket) return Promise.resolve(null);
        return fetch(ticket.queue_url, { method: "DELETE" }).then(function (r) { return r.json(); });
      },
    };

    call("onState", "joining");
    var existing = savedTicket(fileId);
    (existing ? Promise.resolve(existing) : issueToken(fileId, options.apiKey))
      .then(function (issued) {
        ticket = issued;
        var store = storage();
        if (store) store.setItem(PREFIX + fileId, JSON.stringify(issued));
        if (!finished) listen();
      })
      .catch(function (error) { finish(); call("onError", error); });
    return place;
  }

  global.DownloadQueue = { joinQueue: joinQueue, issueToken: issueToken, savedTicket: savedTicket, forgetTicket: forgetTicket };
  global.joinQueue = joinQueue;
})(window);
