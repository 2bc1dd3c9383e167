/*
 * download-queue.js: a small browser client for the download queue. No build step, no deps.
 *
 *   const place = joinQueue(fileId, {
 *     onPosition(view) {},  // {position, waiting, active, capacity, eta_seconds, mode}
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
 * itself; the server keeps the place across reconnects.
 */
(function (global) {
  "use strict";

  var PREFIX = "download-queue:file:";

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

    function finish() {
      finished = true;
      if (source) source.close();
    }

    function listen() {
      source = new EventSource(ticket.queue_url);
      source.onopen = function () { call("onState", "waiting"); };
      source.addEventListener("position", function (event) {
        call("onPosition", JSON.parse(event.data));
      });
      source.addEventListener("ready", function (event) {
        source.close();
        var ready = JSON.parse(event.data);
        ready.token = ticket.token;
        ready.status_url = ticket.status_url;
        call("onReady", ready);
        if (!finished && (handlers.onProgress || handlers.onDone)) follow();
        else finish();
      });
      source.addEventListener("error", function (event) {
        if (event.data) {  // an error the server sent: the place is gone
          finish();
          var error = JSON.parse(event.data).error;
          if (error.code !== "queue_full") forgetTicket(fileId);
          call("onError", error);
        } else if (!finished) {  // the connection dropped: EventSource retries by itself
          call("onState", source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
          if (source.readyState === EventSource.CLOSED) setTimeout(function () { if (!finished) listen(); }, 3000);
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
