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
  // the page's language: texts from the server's catalog (page-strings), numbers and durations by Intl
  var LANG = document.documentElement.lang || "en";
  var STRINGS = JSON.parse(($("page-strings") || {}).textContent || "{}");
  function t(text, values) {
    return (STRINGS[text] || text).replace(/\{(\w+)\}/g, function (whole, key) {
      return values && key in values ? values[key] : whole;
    });
  }
  function number(value, digits) {
    return new Intl.NumberFormat(LANG, { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 }).format(value);
  }
  function unit(value, name) {
    return new Intl.NumberFormat(LANG, { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: 1 }).format(value);
  }

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
    if (seconds < 60) return unit(Math.max(1, Math.round(seconds)), "second");
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return unit(minutes, "minute");
    return unit(Math.round(seconds / 360) / 10, "hour");
  }

  function humanWait(seconds) {
    if (seconds === null || seconds === undefined) return t("Working out how long the wait is…");
    if (seconds === 0) return t("A download slot is free: your turn is now.");
    if (seconds < 15) return t("Your turn is moments away.");
    return t("Estimated wait: about {time}.", { time: human(seconds) });
  }

  function size(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"], value = bytes, step = 0;
    while (value >= 1024 && step < units.length - 1) { value /= 1024; step += 1; }
    return step === 0 ? number(value) + " bytes" : number(value, 1) + " " + units[step];
  }

  var siteTitle = document.title;
  function title(text) { document.title = text ? text + " — " + fileName : siteTitle; }

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
    el.start.textContent = label || t("Download");
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
    return t("in {time}", { time: (h ? unit(h, "hour") + " " : "") + (h || m ? unit(m, "minute") + " " : "") +
      unit(sec, "second") });
  }

  function tickRelease() {
    if (!release) return;
    var text = untilRelease();
    $("countdown").textContent = text ? "(" + text + ")" : t("(released)");
    if (text) setTimeout(tickRelease, 1000);
  }
  tickRelease();

  function onPrequeued(view) {  // joined before the release: no place yet
    eta = null;
    el.place.hidden = false;
    el.position.textContent = t("pre-queued");
    el.eta.dataset.seconds = "";
    var when = untilRelease();
    el.eta.textContent = t("{count} waiting for the release", { count: number(view.prequeued) }) +
      (when ? " " + when : "") + ". " + t("At the release everyone who arrived before it is placed in a random order.");
    counts(view);
    setState("waiting", t("You are in the pre-queue. Keep this page open; your place is drawn at the release."));
    title(t("Pre-queued"));
    if (lastAnnounced !== "pre") {
      lastAnnounced = "pre";
      say(t("You are in the pre-queue. Your place in line is drawn at random at the release."));
    }
  }

  // between two events the estimate counts down by itself (never below "moments away": the turn
  // comes with an event, not with the clock)
  var eta = null;
  setInterval(function () {
    if (!eta || eta.seconds === null || eta.seconds === undefined || el.place.hidden || !eta.seconds) return;
    var left = Math.max(1, Math.round(eta.seconds - (Date.now() - eta.at) / 1000));
    el.eta.textContent = humanWait(left);
  }, 1000);

  function counts(view) {
    el.waiting.textContent = number(view.waiting);
    el.active.textContent = number(view.active);
    el.capacity.textContent = number(view.capacity);
  }

  function onPosition(view) {
    if (view.position === null) { onPrequeued(view); return; }
    el.place.hidden = false;
    el.position.textContent = "#" + number(view.position);
    el.eta.dataset.seconds = view.eta_seconds === null ? "" : view.eta_seconds;
    eta = view.mode === "paused" ? null : { seconds: view.eta_seconds, at: Date.now() };
    el.eta.textContent = view.mode === "paused"
      ? t("The line is paused by its operators; you keep your place.") : humanWait(view.eta_seconds);
    counts(view);
    setState("waiting", t("You are in line. Keep this page open; the download starts by itself."));
    title(t("#{position} in line", { position: number(view.position) }));
    if (reconnecting) {  // the server answered the reconnect: only now is the place known to be kept
      reconnecting = false;
      lastAnnounced = view.position;
      say(t("Reconnected. Your place is kept: number {position} in line.", { position: number(view.position) }));
    } else if (view.position !== lastAnnounced) {
      lastAnnounced = view.position;
      say(t("You are number {position} in line.", { position: number(view.position) }) + " " + el.eta.textContent);
    }
  }

  function notifyTurn() {
    if (!el.notify.checked || !document.hidden || !("Notification" in window)) return;
    if (Notification.permission === "granted") {
      new Notification(t("Your turn: {name}", { name: fileName }), { body: t("The download is starting.") });
    }
  }

  function onReady(ready, following) {
    reconnecting = false;
    el.place.hidden = true;
    el.leave.hidden = false;
    el.leave.textContent = t("Cancel download");
    focusOn(el.leave);
    downloading = true;
    el.notifyLabel.hidden = true;
    title(t("Your turn"));
    notifyTurn();
    say(t("It's your turn. Your download is starting."));
    // the browser's own download (nothing is buffered in this page), started once per token by
    // the leading tab: a reload, or another tab of this file, follows its progress instead
    var started = "download-queue:started:" + ready.token;
    if (!following && !remembered(started)) {
      remember(started);
      el.fallback.href = ready.download_url;
      el.fallback.setAttribute("download", "");
      el.fallback.click();
    }
    setState("downloading", following ? t("It's your turn: your browser is downloading the file (started in another tab).")
      : t("It's your turn: your browser is downloading the file."));
    el.progress.hidden = false;
    el.bar.value = 0;
    el.progressText.textContent = t("Starting…");
  }

  function onProgress(p) {
    var percent = p.size ? Math.floor((100 * p.bytes) / p.size) : 100;
    el.bar.value = percent;
    el.progressText.textContent = t("{done} of {size} ({percent} %)", { done: size(p.bytes), size: size(p.size), percent: number(percent) }) +
      (p.rate_bytes_per_second ? " · " + t("{rate}/s", { rate: size(p.rate_bytes_per_second) }) : "") +
      (p.eta_seconds !== null && p.eta_seconds !== undefined ? " · " + t("about {time} left", { time: human(p.eta_seconds) }) : "");
    title(t("{percent} % downloaded", { percent: number(percent) }));
  }

  function onDone(done) {
    current = null;
    el.bar.value = 100;
    el.done.hidden = false;
    el.doneSha.textContent = done.sha256;
    setState("done", t("Done: your browser received the whole file ({size}).", { size: size(done.size) }));
    say(t("Your download is complete."));
    title(t("Done"));
    primary(t("Download again"));
  }

  function onLeft() {
    current = null;
    setState("left", t("You left the line in another tab."));
    say(t("You left the line in another tab."));
    title("");
    primary(t("Download"));
  }

  function onError(error) {
    current = null;
    var seconds = error.retry_after ? Math.max(1, Math.round(error.retry_after)) : null;
    var again = t("Join the line again");
    var words = {
      queue_full: [t("The line is full right now. Try again in about {seconds} seconds.", { seconds: number(seconds || 30) }), t("Try again")],
      queue_draining: [t("The line is closing and takes no newcomers right now. Try again later."), t("Try again")],
      rate_limited: [t("Too many requests from your address. Try again in about {seconds} seconds.", { seconds: number(seconds || 60) }), t("Try again")],
      token_expired: [t("Your place expired. You can get a new place with one click."), t("Get a new place")],
      token_spent: [t("This download has already completed."), t("Download again")],
      token_removed: [t("The operators removed this download from the line."), again],
      not_in_queue: [t("Your place or your download slot lapsed."), again],
      place_lapsed: [error.away_seconds ? t("Your place lapsed after {time} away.", { time: human(error.away_seconds) })
        : t("Your place lapsed while you were away."), again],
      turn_missed: [t("Your turn came while you were away and passed to the next person."), again],
      invalid_token: [t("Your saved place could not be read."), t("Get a new place")],
    }[error.code] || [error.message || t("Something went wrong."), t("Try again")];
    reconnecting = false;
    setState("error", t("You are not in line."));
    say("");  // the message is an alert: read once, by itself
    showMessage(words[0]);
    title("");
    primary(words[1]);
  }

  function onState(state) {
    if (state === "joining") setState("joining", t("Joining the line…"));
    if (state === "reconnecting" && !reconnecting) {  // announced once per loss, not per retry
      reconnecting = true;
      setState("reconnecting", t("Connection lost; reconnecting…"));
      say(t("Connection lost; reconnecting."));
    }
  }

  function start() {
    showMessage("");
    el.done.hidden = true;
    el.start.disabled = true;
    el.start.hidden = true;
    el.leave.hidden = false;
    el.leave.textContent = t("Leave the line");
    el.notifyLabel.hidden = !("Notification" in window);
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
    var text = cancelled ? t("You cancelled the download; your slot went to the next person.")
      : t("You left the line.");
    setState("left", text);
    say(text);
    title("");
    primary(t("Download"));
  });
  if ("Notification" in window) {
    el.notifyLabel.hidden = false;
    el.notify.addEventListener("change", function () {
      if (el.notify.checked && Notification.permission === "default") Notification.requestPermission();
    });
  }

  if (DownloadQueue.savedTicket(fileId)) {
    start();  // a reload, or another tab of this file, re-attaches to the same place
  } else {  // before the click: how long the line is now
    fetch("/api/v1/queue").then(function (r) { return r.ok ? r.json() : null; }).then(function (line) {
      if (!line || current) return;
      el.state.textContent = line.waiting === 0 && line.active < line.capacity
        ? t("No one is waiting: your download starts at once.")
        : t("{count} waiting now.", { count: number(line.waiting) }) +
          (line.eta_seconds ? " " + t("A newcomer waits about {time}.", { time: human(line.eta_seconds) }) : "");
    }).catch(function () { /* the line's length is a courtesy: the button works without it */ });
  }
})();
