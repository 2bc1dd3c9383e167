/* The download page: drives joinQueue() and keeps the person informed in plain words.
 * One primary action at each state: Download → Leave the line → Cancel download → Download again. */
(function () {
  "use strict";

  var root = document.getElementById("download");
  if (!root) return;
  var fileId = root.dataset.fileId;
  var fileName = root.dataset.fileName;
  var $ = function (id) { return document.getElementById(id); };
  var el = {
    state: $("state"), place: $("place"), position: $("position"), eta: $("eta"),
    waiting: $("waiting"), active: $("active"), capacity: $("capacity"),
    message: $("message"), announce: $("announce"), start: $("start"), leave: $("leave"), fallback: $("fallback"),
    progress: $("progress"), bar: $("bar"), progressText: $("progress-text"), done: $("done"), doneSha: $("done-sha"),
    notify: $("notify"), notifyLabel: $("notify-label"),
  };
  var current = null;
  var downloading = false;
  var lastAnnounced = null;
  var reconnecting = false;  // the next position heard is the server saying the place is kept

  function remembered(key) {  // shared by this site's tabs (localStorage), if the browser lets us
    try { return localStorage.getItem(key) !== null; } catch (e) { return false; }
  }

  function remember(key) {
    try { localStorage.setItem(key, "1"); } catch (e) { /* private mode: per page only */ }
  }

  function human(seconds) {
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min";
    return (Math.round(seconds / 360) / 10) + " h";
  }

  function humanWait(seconds) {
    if (seconds === null || seconds === undefined) return "Working out how long the wait is…";
    if (seconds === 0) return "A download slot is free: your turn is now.";
    if (seconds < 15) return "Your turn is moments away.";
    return "Estimated wait: about " + human(seconds) + ".";
  }

  function size(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"], value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? value + " bytes" : value.toFixed(1) + " " + units[unit];
  }

  function title(text) { document.title = text ? text + " — " + fileName : fileName + " · Downloads"; }

  function setState(name, text) {
    el.state.dataset.state = name;
    el.state.textContent = text;
  }

  function say(text) { el.announce.textContent = text; }

  function showMessage(text) {
    el.message.textContent = text;
    el.message.hidden = !text;
  }

  // focus follows the one action that makes sense now, unless the person is elsewhere on the page
  function focusOn(control) {
    var active = document.activeElement;
    if (!active || active === document.body || active === el.start || active === el.leave) control.focus();
  }

  function primary(label) {  // the one action while not in line
    el.start.hidden = false;
    el.start.disabled = false;
    el.start.textContent = label || "Download";
    el.leave.hidden = true;
    el.place.hidden = true;
    el.progress.hidden = true;
    downloading = false;
    focusOn(el.start);
  }

  var release = $("release");
  var releaseAt = release ? Date.parse(release.dataset.releaseAt) : null;

  function untilRelease() {  // "in 1 h 02 min 05 s", or "" once it is past
    var left = Math.round((releaseAt - Date.now()) / 1000);
    if (!(left > 0)) return "";
    var h = Math.floor(left / 3600), m = Math.floor(left / 60) % 60, sec = left % 60;
    return "in " + (h ? h + " h " : "") + (h || m ? m + " min " : "") + sec + " s";
  }

  function tickRelease() {
    if (!release) return;
    var text = untilRelease();
    $("countdown").textContent = text ? "(" + text + ")" : "(released)";
    if (text) setTimeout(tickRelease, 1000);
  }
  tickRelease();

  function onPrequeued(view) {  // joined before the release: no place yet
    el.place.hidden = false;
    el.position.textContent = "pre-queued";
    el.eta.dataset.seconds = "";
    var when = untilRelease();
    el.eta.textContent = view.prequeued + " waiting for the release" + (when ? " " + when : "") +
      ". At the release everyone who arrived before it is placed in a random order.";
    el.waiting.textContent = view.waiting;
    el.active.textContent = view.active;
    el.capacity.textContent = view.capacity;
    setState("waiting", "You are in the pre-queue. Keep this page open; your place is drawn at the release.");
    title("Pre-queued");
    if (lastAnnounced !== "pre") {
      lastAnnounced = "pre";
      say("You are in the pre-queue. Your place in line is drawn at random at the release.");
    }
  }

  function onPosition(view) {
    if (view.position === null) { onPrequeued(view); return; }
    el.place.hidden = false;
    el.position.textContent = "#" + view.position;
    el.eta.dataset.seconds = view.eta_seconds === null ? "" : view.eta_seconds;
    el.eta.textContent = view.mode === "paused"
      ? "The line is paused by its operators; you keep your place." : humanWait(view.eta_seconds);
    el.waiting.textContent = view.waiting;
    el.active.textContent = view.active;
    el.capacity.textContent = view.capacity;
    setState("waiting", "You are in line. Keep this page open; the download starts by itself.");
    title("#" + view.position + " in line");
    if (reconnecting) {  // the server answered the reconnect: only now is the place known to be kept
      reconnecting = false;
      lastAnnounced = view.position;
      say("Reconnected. Your place is kept: number " + view.position + " in line.");
    } else if (view.position !== lastAnnounced) {
      lastAnnounced = view.position;
      say("You are number " + view.position + " in line. " + el.eta.textContent);
    }
  }

  function notifyTurn() {
    if (!el.notify.checked || !document.hidden || !("Notification" in window)) return;
    if (Notification.permission === "granted") new Notification("Your turn: " + fileName, { body: "The download is starting." });
  }

  function onReady(ready, following) {
    reconnecting = false;
    el.place.hidden = true;
    el.leave.hidden = false;
    el.leave.textContent = "Cancel download";
    focusOn(el.leave);
    downloading = true;
    title("Your turn");
    notifyTurn();
    say("It's your turn. Your download is starting.");
    // the browser's own download (nothing is buffered in this page), started once per token by
    // the leading tab: a reload, or another tab of this file, follows its progress instead
    var started = "download-queue:started:" + ready.token;
    if (!following && !remembered(started)) {
      remember(started);
      el.fallback.href = ready.download_url;
      el.fallback.setAttribute("download", "");
      el.fallback.click();
    }
    setState("downloading", following ? "It's your turn: your browser is downloading the file (started in another tab)."
      : "It's your turn: your browser is downloading the file.");
    el.progress.hidden = false;
    el.bar.value = 0;
    el.progressText.textContent = "Starting…";
  }

  function onProgress(p) {
    var percent = p.size ? Math.floor((100 * p.bytes) / p.size) : 100;
    el.bar.value = percent;
    el.progressText.textContent = size(p.bytes) + " of " + size(p.size) + " (" + percent + " %)" +
      (p.rate_bytes_per_second ? " · " + size(p.rate_bytes_per_second) + "/s" : "") +
      (p.eta_seconds !== null && p.eta_seconds !== undefined ? " · about " + human(p.eta_seconds) + " left" : "");
    title(percent + " % downloaded");
  }

  function onDone(done) {
    current = null;
    el.bar.value = 100;
    el.done.hidden = false;
    el.doneSha.textContent = done.sha256;
    setState("done", "Done: your browser received the whole file (" + size(done.size) + ").");
    say("Your download is complete.");
    title("Done");
    primary("Download again");
  }

  function onLeft() {
    current = null;
    setState("left", "You left the line in another tab.");
    say("You left the line in another tab.");
    title("");
    primary("Download");
  }

  function onError(error) {
    current = null;
    var seconds = error.retry_after ? Math.max(1, Math.round(error.retry_after)) : null;
    var words = {
      queue_full: ["The line is full right now. Try again in about " + (seconds || 30) + " seconds.", "Try again"],
      queue_draining: ["The line is closing and takes no newcomers right now. Try again later.", "Try again"],
      rate_limited: ["Too many requests from your address. Try again in about " + (seconds || 60) + " seconds.", "Try again"],
      token_expired: ["Your place expired. You can get a new place with one click.", "Get a new place"],
      token_spent: ["This download has already completed.", "Download again"],
      token_removed: ["The operators removed this download from the line.", "Join the line again"],
      not_in_queue: ["Your place or your download slot lapsed.", "Join the line again"],
      place_lapsed: [error.message ? error.message.replace(/;.*$/, ".") : "Your place lapsed while you were away.",
        "Join the line again"],
      turn_missed: ["Your turn came while you were away and passed to the next person.", "Join the line again"],
      invalid_token: ["Your saved place could not be read.", "Get a new place"],
    }[error.code] || [error.message || "Something went wrong.", "Try again"];
    reconnecting = false;
    setState("error", "You are not in line.");
    say("");  // the message is an alert: read once, by itself
    showMessage(words[0]);
    title("");
    primary(words[1]);
  }

  function onState(state) {
    if (state === "joining") setState("joining", "Joining the line…");
    if (state === "reconnecting" && !reconnecting) {  // announced once per loss, not per retry
      reconnecting = true;
      setState("reconnecting", "Connection lost; reconnecting…");
      say("Connection lost; reconnecting.");
    }
  }

  function start() {
    showMessage("");
    el.done.hidden = true;
    el.start.disabled = true;
    el.start.hidden = true;
    el.leave.hidden = false;
    el.leave.textContent = "Leave the line";
    focusOn(el.leave);
    current = joinQueue(fileId, {
      onPosition: onPosition, onReady: onReady, onProgress: onProgress, onDone: onDone,
      onError: onError, onState: onState, onLeft: onLeft,
    });
  }

  el.start.addEventListener("click", start);
  el.leave.addEventListener("click", function () {
    var place = current, cancelled = downloading;
    current = null;
    if (place) place.leave();
    var text = cancelled ? "You cancelled the download; your slot went to the next person."
      : "You left the line. Your place went to the next person.";
    setState("left", text);
    say(text);
    title("");
    primary("Download");
  });
  if ("Notification" in window) {
    el.notifyLabel.hidden = false;
    el.notify.addEventListener("change", function () {
      if (el.notify.checked && Notification.permission === "default") Notification.requestPermission();
    });
  }

  if (DownloadQueue.savedTicket(fileId)) start();  // a reload re-attaches to the same place
})();
