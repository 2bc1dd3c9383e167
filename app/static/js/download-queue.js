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
 *     onLeft() {},          // another tab of this file left the line (or cancelled the download)
 *   });
 *
 * Every handler gets a second argument, `following`: true in a tab that follows another tab of the
 * same file (only the leading tab streams and downloads; see below).
 *   place.leave();          // give the place (or the slot) back: leaving, or cancelling a download
 *
 * After `ready`, the client follows the download's progress as the server counts it (what the
 * browser acknowledged) when onProgress or onDone is given. Types: download-queue.d.ts.
 *
 * The token is kept in localStorage, so a reload, a dropped connection, a second or a duplicated
 * tab re-attach to the same place while the server keeps it. Of several tabs of one file, one
 * leads (a claim renewed in localStorage): it holds the stream and starts the download; the
 * others hear everything from it over a BroadcastChannel, and one of them takes over if it closes. EventSource reconnects by
 * itself; the server keeps the place across reconnects. A connection that died silently (a
 * phone's radio, a NAT that forgot it, a frozen tab) is noticed: the page reconnects at once
 * when it becomes visible again or the browser comes back online, and whenever nothing (not even
 * a heartbeat) arrived for twice the server's heartbeat interval. A "ready" that arrives after
 * such a silence (a frozen page waking up) is checked with a fresh stream before it is believed.
 *
 * While away (no stream, no poll for the server's WAIT_GRACE) a place is kept for AWAY_GRACE but
 * not admitted; coming back takes the next free slot. A place that lapsed or a turn that passed
 * while away is an error event (place_lapsed, turn_missed): never a silent new place.
 */
(function (global) {
  "use strict";

  var PREFIX = "download-queue:file:";
  var CLAIM = "download-queue:leader:";  // + file id: {id, at} of the tab that leads
  var CLAIM_MS = 5000, BEAT_MS = 1500, ELECTION_MS = 150;
  var HEARTBEAT_SECONDS = 30;  // until the server's first heartbeat says its interval

  function storage() {  // shared by the browser's tabs of this site: one place per person, not per tab
    try { return global.localStorage; } catch (e) { return null; }
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
    // One tab leads: it holds the file's claim (a lease in localStorage, renewed every BEAT_MS), the
    // stream and the download, and tells the other tabs of this file (BroadcastChannel) everything
    // it hears; they follow it, and one of them takes over when the claim is given up or runs out.
    // (Not Web Locks: a page holding one is never kept in the back-forward cache.) Two tabs that
    // both lead for a moment still share one place: the token is the same.
    var store = storage();
    var channel = global.BroadcastChannel ? new global.BroadcastChannel(PREFIX + fileId) : null;
    var leading = !store || !channel;
    var latest = {};  // the leader's latest word of each kind, for a tab that opens later
    var attaching = !!savedTicket(fileId);  // a place exists: this tab never makes another
    var me = Math.random().toString(36).slice(2);
    var claimKey = CLAIM + fileId;
    var beat = null, watch = null;
    var handle = function (name, value) {
      if (typeof handlers[name] === "function") handlers[name](value, !leading);
    };
    var call = function (name, value) {
      if (leading && channel) {
        latest[name] = value;
        channel.postMessage({ name: name, value: value });
      }
      handle(name, value);
    };
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
      giveUpClaim();
      if (watch !== null) clearInterval(watch);
      global.removeEventListener("storage", onClaimChange);
    }

    function claim() {
      try { return JSON.parse(store.getItem(claimKey)); } catch (e) { return null; }
    }

    function renewClaim() { store.setItem(claimKey, JSON.stringify({ id: me, at: Date.now() })); }

    function giveUpClaim() {
      if (beat !== null) clearInterval(beat);
      beat = null;
      var held = store && claim();
      if (held && held.id === me) store.removeItem(claimKey);
    }

    function elect() {  // lead if nobody holds a live claim (checked again after a moment: last writer wins)
      var held = claim();
      if (finished || leading || (held && held.id !== me && Date.now() - held.at < CLAIM_MS)) return;
      if (attaching && !savedTicket(fileId)) return;  // the place ended: never make a new one here
      renewClaim();
      setTimeout(function () {
        var now = claim();
        if (finished || leading || !now || now.id !== me) return;
        beat = setInterval(renewClaim, BEAT_MS);
        lead();
      }, ELECTION_MS);
    }

    function onClaimChange(event) { if (event.key === claimKey && !event.newValue) elect(); }

    function stepDown() {  // another tab leads now (this one came back from the back-forward cache)
      leading = false;
      stopWatching();
      if (source) source.close();
      if (beat !== null) clearInterval(beat);
      beat = null;
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
        if (Date.now() - heard > 2 * heartbeat * 1000) {
          // heard after a silence no live stream has (a frozen page waking up): the turn may have
          // passed meanwhile, so ask again before announcing it (the server answers ready again,
          // or what happened)
          reconnect();
          return;
        }
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
          var error = JSON.parse(event.data).error;
          if (error.code === "token_spent" && (handlers.onProgress || handlers.onDone)) {
            // the download this place started (in this tab or one it took over from) completed
            stopWatching();
            mine.close();
            follow();  // its progress stream says done, with the sha256 to compare
            return;
          }
          finish();
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
      leave: function () {  // from any tab: every tab of this file hears it
        var held = ticket || savedTicket(fileId);
        finish();
        forgetTicket(fileId);
        if (channel) channel.postMessage({ name: "left" });
        if (!held) return Promise.resolve(null);
        return fetch(held.queue_url, { method: "DELETE" }).then(function (r) { return r.json(); });
      },
    };

    if (channel) {
      channel.onmessage = function (event) {
        var message = event.data;
        if (finished) return;
        if (message.name === "left") {  // another tab left the line (or cancelled the download)
          finish();
          handle("onLeft", null);
        } else if (leading) {
          if (message.name === "hello") {
            ["onState", "onPosition", "onReady", "onProgress"].forEach(function (name) {
              if (name in latest) channel.postMessage({ name: name, value: latest[name] });
            });
          }
        } else if (message.name !== "hello") {
          if (message.name === "onDone" || message.name === "onError") finish();
          handle(message.name, message.value);
        }
      };
    }

    function lead() {
      leading = true;
      if (ticket && !finished) {  // it led before (back from the cache): a fresh stream
        listen();
        return;
      }
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
    }

    if (leading) {
      lead();
    } else {
      handle("onState", "joining");
      global.addEventListener("storage", onClaimChange);
      watch = setInterval(elect, CLAIM_MS / 4);  // a leader that vanished (closed, crashed, frozen)
      elect();
      channel.postMessage({ name: "hello" });
    }
    // into the back-forward cache and back: the claim ran out meanwhile, maybe to another tab
    global.addEventListener("pagehide", function () { if (store && channel) giveUpClaim(); });
    global.addEventListener("pageshow", function (event) {
      if (!event.persisted || finished || !store || !channel) return;
      if (leading) stepDown();  // its stream may be dead, and another tab may lead now
      if (watch === null) {
        global.addEventListener("storage", onClaimChange);
        watch = setInterval(elect, CLAIM_MS / 4);
      }
      elect();
    });
    return place;
  }

  global.DownloadQueue = { joinQueue: joinQueue, issueToken: issueToken, savedTicket: savedTicket, forgetTicket: forgetTicket };
  global.joinQueue = joinQueue;
})(window);
