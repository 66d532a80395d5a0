// The dashboard's behaviour. It runs under a nonce-based CSP with htmx's eval turned off:
// no inline handlers, every URL comes from the server's markup (hx-get, data- attributes).
//
// - Polls are morphed in place (idiomorph), keeping open <details>, typed values, focus,
//   scroll, uPlot's canvases, the flame graph and outcomes the user has not dismissed.
// - A poll sends back the ETag of its last answer; an unchanged fragment costs a 304.
// - Polling pauses while the tab is hidden and refreshes when it shows again.
// - Each panel says when its data is stale ("stale since 12:01:07, retrying") or why its
//   last poll failed; the header badge's count prefixes the page title.
// - <time data-ts> shows the viewer's local time and its age; charts are drawn by uPlot
//   from the metrics panel's JSON data island, deploys as dashed vertical lines.
(function () {
  "use strict";

  // ------------------------------------------------------------------ morphing
  function edited(el) {
    return (el.tagName === "INPUT" && el.type !== "hidden" && el.value !== el.defaultValue) ||
      (el.tagName === "TEXTAREA" && el.value !== el.defaultValue);
  }
  if (window.Idiomorph) {
    Idiomorph.defaults.ignoreActiveValue = true;
    var callbacks = Idiomorph.defaults.callbacks;
    callbacks.beforeAttributeUpdated = function (name, el) {
      if (name === "open" && el.tagName === "DETAILS") return false; // the user's open or closed
      if ((name === "value" || name === "checked") && edited(el)) return false; // typed, not sent yet
      return true;
    };
    callbacks.beforeNodeMorphed = function (old, young) {
      if (old.nodeType !== 1) return true;
      if (old.hasAttribute("data-chart")) return false; // uPlot draws inside; fed from the data island
      // A view read by requests of its own (the flame graph): the panel's poll sends a placeholder for it.
      if (young.nodeType === 1 && young.hasAttribute("data-placeholder") && old.id === young.id) return false;
      if (old.tagName === "TIME" && old.getAttribute("data-ts") === young.getAttribute("data-ts")) return false;
      return true;
    };
    callbacks.beforeNodeRemoved = function (node) {
      return !(node.nodeType === 1 && node.classList.contains("outcome")); // until dismissed or replaced
    };
  }

  // ------------------------------------------------------------------ times
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(date) {
    var hms = pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
    if (date.toDateString() === new Date().toDateString()) return hms;
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + " " + hms;
  }
  function age(ms) {
    // A moment to come (a silence's end) reads "in 59 min".
    var s = Math.round(Math.abs(ms) / 1000), ago = ms >= 0 ? " ago" : "", ahead = ms >= 0 ? "" : "in ";
    if (s < 1) return "just now";
    if (s < 60) return ahead + s + " s" + ago;
    if (s < 3600) return ahead + Math.floor(s / 60) + " min" + ago;
    if (s < 86400) return ahead + Math.floor(s / 3600) + " h" + ago;
    return ahead + Math.floor(s / 86400) + " d" + ago;
  }
  function showTimes(root) {
    var now = Date.now();
    root.querySelectorAll("time[data-ts]").forEach(function (el) {
      var ms = parseFloat(el.getAttribute("data-ts")) * 1000;
      var text = clock(new Date(ms)) + " · " + age(now - ms);
      if (el.textContent !== text) el.textContent = text;
      if (!el.title) el.title = new Date(ms).toString();
    });
  }

  // ------------------------------------------------------------------ polling state
  function ms(interval) {
    var found = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(interval || "");
    if (!found) return 0;
    return parseFloat(found[1]) * ({ms: 1, s: 1000, m: 60000}[found[2] || "ms"]);
  }
  var polls = new Map(); // poller id -> {ok: time of the last good answer, failure: null | {at, why}}
  var etags = new Map(); // poller id -> {path, etag}
  function pollState(id) {
    if (!polls.has(id)) polls.set(id, {ok: Date.now(), failure: null});
    return polls.get(id);
  }
  function isPoller(elt) { return elt && elt.hasAttribute && elt.hasAttribute("data-poll") && elt.id; }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var verb = event.detail.requestConfig && event.detail.requestConfig.verb;
    if (document.hidden && verb === "get" && isPoller(event.detail.elt)) event.preventDefault();
  });
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.verb !== "get" || !isPoller(elt)) return;
    var known = etags.get(elt.id);
    if (known && known.path === event.detail.path) event.detail.headers["If-None-Match"] = known.etag;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt, xhr = event.detail.xhr;
    if (!isPoller(elt) || !xhr || xhr.status < 200 || xhr.status >= 400) return;
    var state = pollState(elt.id);
    state.ok = Date.now();
    state.failure = null;
    var etag = xhr.getResponseHeader("ETag");
    if (etag && xhr.status === 200) etags.set(elt.id, {path: event.detail.requestConfig.path, etag: etag});
  });
  function reason(xhr) {
    var text = "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      text = ((doc.querySelector("p") || doc.body).textContent || "").trim().replace(/\s+/g, " ");
    } catch (ignored) { /* not HTML: the status says enough */ }
    return "error " + xhr.status + (text ? ": " + text.slice(0, 200) : "");
  }
  function failed(event, why) {
    var elt = event.detail.elt;
    if (isPoller(elt)) {
      var state = pollState(elt.id);
      if (!state.failure) state.failure = {at: Date.now(), why: why};
      else state.failure.why = why;
      showStates();
    } else if (event.detail.requestConfig && event.detail.requestConfig.verb !== "get") {
      // an action that failed without a panel to show: say so where its outcome would be
      outcome(elt.closest(".panel"), why || "the server could not be reached; try again");
    }
  }
  document.addEventListener("htmx:responseError", function (event) { failed(event, reason(event.detail.xhr)); });
  document.addEventListener("htmx:sendError", function (event) { failed(event, null); });
  document.addEventListener("htmx:timeout", function (event) { failed(event, null); });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr, config = event.detail.requestConfig, elt = config.elt; // detail.elt: the target
    // A poll sent before its element changed view (a filter was applied meanwhile) is outdated.
    if (isPoller(elt) && config.verb === "get" && elt.getAttribute("hx-get") !== config.path) {
      event.detail.shouldSwap = false;
      return;
    }
    // An action the server refused answers the refreshed panel with its message (4xx): show it.
    if (xhr.status >= 400 && xhr.status < 500 && config.verb === "post" &&
        /^\s*<section[^>]+class="panel /.test(xhr.responseText)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function outcome(panel, text) {
    if (!panel) return;
    var box = document.getElementById("outcome-" + panel.id.replace(/^panel-/, ""));
    if (!box) {
      box = document.createElement("div");
      box.id = "outcome-" + panel.id.replace(/^panel-/, "");
      box.className = "flash outcome error";
      box.setAttribute("role", "alert");
      box.appendChild(document.createElement("span"));
      var close = document.createElement("button");
      close.type = "button";
      close.className = "dismiss";
      close.setAttribute("data-dismiss", "");
      close.setAttribute("aria-label", "Dismiss this message");
      close.textContent = "×";
      box.appendChild(close);
      panel.querySelector(".panel-head").after(box);
    }
    box.className = "flash outcome error";
    box.firstChild.textContent = text.charAt(0).toUpperCase() + text.slice(1);
  }

  // A panel is stale once its data is older than two poll intervals or its last poll failed;
  // it shows an HTTP error's reason instead of its old numbers.
  function showStates() {
    if (document.hidden) return;
    var now = Date.now();
    document.querySelectorAll(".panel").forEach(function (panel) {
      var pollers = [panel].concat(Array.prototype.slice.call(panel.querySelectorAll("[data-poll]")));
      var state = "", text = "";
      pollers.forEach(function (poller) {
        if (!isPoller(poller)) return;
        var seen = pollState(poller.id);
        if (seen.failure && seen.failure.why) {
          state = "error";
          text = seen.failure.why + "; retrying";
        } else if (state !== "error" && (seen.failure || now - seen.ok > 2 * ms(poller.getAttribute("data-poll")))) {
          state = "stale";
          text = "stale since " + clock(new Date(seen.ok)) + ", retrying";
        }
      });
      if ((panel.getAttribute("data-state") || "") !== state) {
        if (state) panel.setAttribute("data-state", state); else panel.removeAttribute("data-state");
      }
      var slot = panel.querySelector(".panel-state");
      if (slot && slot.textContent !== text) slot.textContent = text;
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    var now = Date.now();
    polls.forEach(function (state) { state.ok = Math.max(state.ok, now); });
    document.querySelectorAll("[data-poll]").forEach(function (poller) { htmx.trigger(poller, "monitor:refresh"); });
  });

  // ------------------------------------------------------------------ after each swap
  function syncTitle() {
    var badge = document.getElementById("alerts-badge");
    if (!badge) return;
    var count = parseInt(badge.getAttribute("data-count"), 10) || 0;
    var base = document.title.replace(/^\(\d+\) /, "");
    var title = (count ? "(" + count + ") " : "") + base;
    if (document.title !== title) document.title = title;
  }
  function trimTail() {
    var rows = document.getElementById("log-rows");
    if (!rows) return;
    var keep = parseInt(rows.getAttribute("data-keep"), 10) || 200;
    var lines = rows.querySelectorAll("tr.log-row");
    for (var i = keep; i < lines.length; i++) lines[i].remove();
  }
  document.addEventListener("htmx:afterSwap", function (event) {
    var config = event.detail.requestConfig, target = event.detail.target;
    if (config && target && config.elt !== target && target.querySelectorAll) {
      // Another request (an action, a filter) rewrote these pollers: their next answer is new.
      etags.delete(target.id);
      target.querySelectorAll("[data-poll]").forEach(function (poller) { etags.delete(poller.id); });
    }
    showTimes(document);
    trimTail();
    syncTitle();
    drawCharts();
  });

  // ------------------------------------------------------------------ charts (uPlot)
  var charts = {};
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function number(value) {
    if (value == null) return "–";
    var size = Math.abs(value);
    if (size >= 100 || value === 0) return Math.round(value).toLocaleString();
    return String(parseFloat(value.toPrecision(size >= 1 ? 3 : 2)));
  }
  function latency(value) {
    if (value == null) return "–";
    return value >= 1000 ? number(value / 1000) + " s" : number(value) + " ms";
  }
  function timeTicks(u, ticks) {
    var span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
    return ticks.map(function (t) {
      var d = new Date(t * 1000);
      if (span >= 2 * 86400) return pad(d.getMonth() + 1) + "-" + pad(d.getDate());
      return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (span < 600 ? ":" + pad(d.getSeconds()) : "");
    });
  }
  // Deploy markers: a dashed vertical line at each, its release named at the top.
  function drawMarkers(u) {
    var ctx = u.ctx, box = u.bbox;
    (u.monitorMarkers || []).forEach(function (marker) {
      var x = Math.round(u.valToPos(marker.t, "x", true));
      if (x < box.left || x > box.left + box.width) return;
      ctx.save();
      ctx.strokeStyle = ctx.fillStyle = cssVar("--muted");
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, box.top);
      ctx.lineTo(x + 0.5, box.top + box.height);
      ctx.stroke();
      ctx.font = Math.round(11 * devicePixelRatio) + "px system-ui, sans-serif";
      ctx.fillText(String(marker.label).slice(0, 24), x + 4, box.top + 12 * devicePixelRatio);
      ctx.restore();
    });
  }
  function draw(id, columns, series, format, markers) {
    var host = document.getElementById(id);
    if (!host) return;
    var chart = charts[id];
    if (chart && host.contains(chart.root)) {
      chart.monitorMarkers = markers;
      chart.setData(columns);
      latest(chart);
      return;
    }
    if (chart) chart.destroy();
    var fg = cssVar("--muted"), grid = cssVar("--chart-grid");
    var axis = {stroke: fg, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}};
    charts[id] = new uPlot({
      width: Math.max(host.clientWidth, 200), height: 160,
      scales: {x: {time: true}, y: {range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; }}},
      series: [{value: function (u, t) { return t == null ? "–" : clock(new Date(t * 1000)); }}].concat(series.map(function (s) {
        return {label: s.label, stroke: cssVar(s.colour), width: 1.5, points: {show: false},
                value: function (u, v) { return format(v); }};
      })),
      axes: [Object.assign({values: timeTicks}, axis),
             Object.assign({size: 60, values: function (u, ticks) { return ticks.map(format); }}, axis)],
      legend: {live: true},
      cursor: {drag: {x: false, y: false}},
      hooks: {setCursor: [latest], draw: [drawMarkers]}
    }, columns, host);
    charts[id].monitorMarkers = markers;
    charts[id].redraw();
    latest(charts[id]);
  }
  // Away from the cursor, the legend shows the newest values rather than dashes.
  function latest(chart) {
    if (chart.cursor.idx == null && chart.data[0].length) chart.setLegend({idx: chart.data[0].length - 1});
  }
  function drawCharts() {
    var island = document.getElementById("metrics-series");
    if (!island || !window.uPlot) return;
    var data = JSON.parse(island.textContent);
    draw("chart-traffic", [data.t, data.requests, data.errors],
         [{label: "requests", colour: "--chart-1"}, {label: "server errors", colour: "--chart-2"}],
         function (v) { return v == null ? "–" : number(v) + "/s"; }, data.markers);
    draw("chart-latency", [data.t, data.p95_ms], [{label: "p95", colour: "--chart-1"}], latency, data.markers);
  }
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      Object.keys(charts).forEach(function (id) {
        var host = document.getElementById(id);
        if (host && host.clientWidth && charts[id].width !== host.clientWidth) {
          charts[id].setSize({width: host.clientWidth, height: 160});
        }
      });
    }).observe(document.documentElement);
  }
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    drawCharts();
  });

  // ------------------------------------------------------------------ clicks and confirmations
  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest && event.target.closest("[data-dismiss]");
    if (dismiss) dismiss.closest(".outcome").remove();
  });
  // Confirm dangerous actions: forms carry data-confirm="question".
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt.closest("[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
  // Plain forms (the users page) ask too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-confirm") && !form.hasAttribute("hx-post") &&
        !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  showTimes(document);
  syncTitle();
  drawCharts();
  setInterval(function () {
    if (document.hidden) return;
    showTimes(document);
    showStates();
  }, 1000);
})();
