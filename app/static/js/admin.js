/* The admin page: live state over SSE, plain-SVG charts, and the controls (JSON API calls).
 * The browser re-sends the page's basic-auth credentials with the stream and every call. */
(function () {
  "use strict";
  var root = document.getElementById("admin");
  var api = root.dataset.api;
  var $ = function (id) { return document.getElementById(id); };

  function size(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB", "TiB"], value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? value + " bytes" : value.toFixed(1) + " " + units[unit];
  }

  function text(id, value) { $(id).textContent = value; }

  function cell(row, value) {
    var td = document.createElement("td");
    td.textContent = value;
    row.appendChild(td);
    return td;
  }

  function renderDownloads(downloads) {
    var body = $("downloads");
    body.textContent = "";
    if (!downloads.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "No download is running.").colSpan = 7;
      body.appendChild(empty);
      return;
    }
    downloads.forEach(function (d) {
      var row = document.createElement("tr");
      row.dataset.token = d.token_id;
      cell(row, d.file_name || d.file_id);
      cell(row, d.client);
      cell(row, size(d.bytes_sent) + " of " + size(d.size));
      cell(row, size(d.rate_bytes_per_second) + "/s");
      cell(row, d.started_at ? new Date(d.started_at).toLocaleTimeString() : "not yet");
      cell(row, d.lease_seconds_left + " s");
      var button = document.createElement("button");
      button.type = "button";
      button.dataset.remove = d.token_id;
      button.textContent = "Remove";
      cell(row, "").appendChild(button);
      body.appendChild(row);
    });
  }

  function renderPlaces(places) {
    text("places-clients", places.clients);
    text("places-limit", places.limit || "no limit");
    text("places-refused", places.refused);
    var body = $("holders");
    body.textContent = "";
    if (!places.top.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      cell(empty, "Nobody holds a place.").colSpan = 2;
      body.appendChild(empty);
    }
    places.top.forEach(function (h) {
      var row = document.createElement("tr");
      cell(row, h.client);
      cell(row, h.places);
      body.appendChild(row);
    });
  }

  function chart(id, values, format) {  // bars to the hour's peak, which the caption states
    var svg = $(id), max = Math.max.apply(null, values.concat([1])), width = 600 / values.length;
    text(id + "-peak", format(Math.max.apply(null, values.concat([0]))));
    svg.textContent = "";
    values.forEach(function (value, n) {
      var height = Math.round((value / max) * 76);
      var bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      bar.setAttribute("x", (n * width).toFixed(1));
      bar.setAttribute("y", 80 - height);
      bar.setAttribute("width", Math.max(1, width - 1).toFixed(1));
      bar.setAttribute("height", height);
      var title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = value;
      bar.appendChild(title);
      svg.appendChild(bar);
    });
  }

  function render(state) {
    var line = state.line;
    $("mode").textContent = line.mode;
    $("mode").dataset.mode = line.mode;
    text("waiting", line.waiting);
    text("away", line.away);
    text("active", line.active);
    text("capacity", line.capacity);
    text("eta", line.newcomer_eta_seconds === null ? "unknown" : line.newcomer_eta_seconds + " s");
    text("rate", (line.admissions_per_second * 60).toFixed(1));
    $("egress-figure").hidden = line.admission_limit === null;
    if (line.admission_limit !== null) {
      text("egress", (line.egress_bytes_per_second / 1e6).toFixed(1));
      text("budget", (state.settings.egress_budget / 1e6).toFixed(1));
      text("limit", line.admission_limit);
    }
    renderDownloads(state.downloads);
    renderPlaces(state.places);
    chart("chart-bytes", state.last_hour.bytes, function (v) { return (v / 1e6).toFixed(1) + " MB"; });
    chart("chart-admissions", state.last_hour.admissions, String);
    if (state.today) {
      text("today-completed", state.today.completed);
      text("today-p50", state.today.wait_p50_seconds === null ? "–" : state.today.wait_p50_seconds.toFixed(1) + " s");
      text("today-p95", state.today.wait_p95_seconds === null ? "–" : state.today.wait_p95_seconds.toFixed(1) + " s");
      text("today-outcomes", Object.keys(state.today.outcomes).map(function (k) {
        return k + " " + state.today.outcomes[k];
      }).join(", ") || "none yet");
    }
    text("live", "Live · updated " + new Date().toLocaleTimeString());
  }

  function say(message) {
    $("message").textContent = message;
    $("message").hidden = !message;
  }

  function call(method, url, body) {
    var options = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error ? data.error.message : response.statusText); }
        say("");
        if (data.line) { render(data); }
        return data;
      });
    }).catch(function (error) { say(error.message); });
  }

  $("capacity-form").addEventListener("submit", function (event) {
    event.preventDefault();
    call("PATCH", api + "/settings", { capacity: Number($("capacity-input").value) });
  });
  document.querySelectorAll("[data-action]").forEach(function (button) {
    button.addEventListener("click", function () { call("POST", api + "/" + button.dataset.action); });
  });
  $("downloads").addEventListener("click", function (event) {
    var id = event.target.dataset && event.target.dataset.remove;
    if (id && window.confirm("Remove this download? Its slot goes to the next waiter.")) {
      call("DELETE", root.dataset.tokens.replace("__id__", encodeURIComponent(id)));
    }
  });

  var source = new EventSource(root.dataset.eventsUrl);
  source.addEventListener("state", function (event) {
    var state = JSON.parse(event.data);
    if (state.error) { text("live", "Live updates paused: " + state.error); return; }
    render(state);
  });
  source.onerror = function () { text("live", "Reconnecting to live updates…"); };
})();
