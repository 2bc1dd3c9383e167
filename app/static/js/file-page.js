/* The download page: drives joinQueue() and keeps the person informed in plain words. */
(function () {
  "use strict";

  var root = document.getElementById("download");
  if (!root) return;
  var fileId = root.dataset.fileId;
  var $ = function (id) { return document.getElementById(id); };
  var el = {
    state: $("state"), place: $("place"), position: $("position"), eta: $("eta"),
    waiting: $("waiting"), active: $("active"), capacity: $("capacity"),
    message: $("message"), announce: $("announce"), start: $("start"), leave: $("leave"), fallback: $("fallback"),
  };
  var current = null;
  var lastAnnounced = null;
  var statusTimer = null;

  function humanWait(seconds) {
    if (seconds === null || seconds === undefined) return "Working out how long the wait is…";
    if (seconds < 15) return "Your turn is moments away.";
    if (seconds < 60) return "Estimated wait: less than a minute.";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return "Estimated wait: about " + minutes + " minute" + (minutes === 1 ? "" : "s") + ".";
    var hours = Math.round(seconds / 360) / 10;
    return "Estimated wait: about " + hours + " hour" + (hours === 1 ? "" : "s") + ".";
  }

  function setState(name, text) {
    el.state.dataset.state = name;
    el.state.textContent = text;
  }

  function say(text) {
    el.announce.textContent = text;
  }

  function showMessage(text, actionLabel) {
    el.message.textContent = text;
    el.message.hidden = !text;
    el.start.textContent = actionLabel || "Download";
  }

  function idle(label) {
    el.start.hidden = false;
    el.start.disabled = false;
    el.start.textContent = label || "Download";
    el.leave.hidden = true;
    el.place.hidden = true;
  }

  function onPosition(view) {
    el.place.hidden = false;
    el.position.textContent = "#" + view.position;
    el.eta.textContent = humanWait(view.eta_seconds);
    el.waiting.textContent = view.waiting;
    el.active.textContent = view.active;
    el.capacity.textContent = view.capacity;
    setState("waiting", "You are in line. Keep this page open; the download starts by itself.");
    if (view.position !== lastAnnounced) {
      lastAnnounced = view.position;
      say("You are number " + view.position + " in line. " + humanWait(view.eta_seconds));
    }
  }

  function onReady(ready) {
    el.place.hidden = true;
    el.leave.hidden = false;
    setState("ready", "It's your turn: your download is starting.");
    say("It's your turn. Your download is starting.");
    el.fallback.href = ready.download_url;
    el.fallback.setAttribute("download", "");
    el.fallback.hidden = false;
    el.fallback.click();  // the browser's own download: nothing is buffered in this page
    setState("downloading", "Downloading. Your browser shows the progress; you can leave this page open.");
    watchUntilDone(ready.status_url);
  }

  function watchUntilDone(statusUrl) {
    clearInterval(statusTimer);
    statusTimer = setInterval(function () {
      fetch(statusUrl).then(function (r) { return r.json(); }).then(function (status) {
        if (status.state === "done") {
          clearInterval(statusTimer);
          if (current) current.forget();
          current = null;
          el.fallback.hidden = true;
          setState("done", "Done: the whole file has been sent to your browser.");
          say("Your download is complete.");
          idle("Download again");
        } else if (status.state === "not_queued" || status.state === "expired") {
          clearInterval(statusTimer);
          current = null;
          setState("error", "The download did not finish in time and your slot was given to the next person.");
          idle("Join the line again");
        }
      }).catch(function () { /* a missed poll is retried */ });
    }, 2000);
  }

  function onError(error) {
    current = null;
    el.place.hidden = true;
    el.fallback.hidden = true;
    var seconds = error.retry_after ? Math.max(1, Math.round(error.retry_after)) : null;
    var words = {
      queue_full: ["The line is full right now. Try again in about " + (seconds || 30) + " seconds.", "Try again"],
      rate_limited: ["Too many requests from your address. Try again in about " + (seconds || 60) + " seconds.", "Try again"],
      token_expired: ["Your place expired. You can get a new place with one click.", "Get a new place"],
      token_spent: ["This download has already completed.", "Download again"],
      not_in_queue: ["Your place in line lapsed because the page was away too long.", "Join the line again"],
      invalid_token: ["Your saved place could not be read.", "Get a new place"],
    }[error.code] || [error.message || "Something went wrong.", "Try again"];
    setState("error", "You are not in line.");
    showMessage(words[0], words[1]);
    say(words[0]);
    idle(words[1]);
  }

  function onState(state) {
    if (state === "joining") setState("joining", "Joining the line…");
    if (state === "reconnecting") setState("reconnecting", "Connection lost; reconnecting. Your place is kept.");
  }

  function start() {
    showMessage("");
    el.start.disabled = true;
    el.start.hidden = true;
    el.leave.hidden = false;
    current = joinQueue(fileId, { onPosition: onPosition, onReady: onReady, onError: onError, onState: onState });
  }

  el.start.addEventListener("click", start);
  el.leave.addEventListener("click", function () {
    clearInterval(statusTimer);
    var place = current;
    current = null;
    if (place) place.leave();
    setState("left", "You left the line. Your place went to the next person.");
    say("You left the line.");
    el.fallback.hidden = true;
    idle("Download");
  });

  if (DownloadQueue.savedTicket(fileId)) start();  // a reload re-attaches to the same place
})();
