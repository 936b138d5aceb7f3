// The live dashboard served at `/` by the metrics server: one self-contained page (no external
// script, style or font: the machines it runs on often have no route to the internet) that
// polls /api/state and draws lockspaces, hosts with a liveness timeline, leases with their
// owners, and the renewal latency history as inline SVG. Every name shown comes from disk or
// from clients, so text only ever goes in through textContent, never as HTML.

export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sanlock-ts dashboard</title>
<style>
  :root { --live:#2e9d47; --unknown:#9aa3ad; --fail:#e39a1b; --dead:#d0342c; --free:#dfe4ea; --read:#2f6fd0; --write:#e0702a; }
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2329; background: #f5f7f9; }
  header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.2em; background: #1d2329; color: #fff; }
  header h1 { font-size: 1.2em; margin: 0; }
  header .muted { color: #aeb7c0; }
  #status.bad { color: #ff8d85; }
  main { padding: .5em 1.2em 2em; }
  section.card { background: #fff; border: 1px solid #d9dee3; border-radius: 6px; padding: .6em 1em 1em; margin: 1em 0; }
  h2 { font-size: 1.1em; margin: .3em 0 .5em; }
  h3 { font-size: 1em; margin: .8em 0 .3em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #eceff2; vertical-align: middle; }
  th { font-weight: 600; color: #4b5560; }
  td.num { font-variant-numeric: tabular-nums; }
  .state { display: inline-block; padding: 0 .5em; border-radius: 3px; color: #fff; font-size: .85em; font-weight: 600; }
  .s-LIVE, .s-joined { background: var(--live); } .s-UNKNOWN, .s-adding { background: var(--unknown); }
  .s-FAIL, .s-removing { background: var(--fail); } .s-DEAD, .s-failed { background: var(--dead); } .s-FREE { background: #8a939c; }
  .kv { display: flex; flex-wrap: wrap; gap: .3em 1.6em; color: #4b5560; }
  .kv b { color: #1d2329; font-weight: 600; }
  .legend { display: flex; gap: 1em; font-size: .85em; color: #4b5560; margin: .2em 0; }
  .legend i { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: -2px; margin-right: .3em; }
  svg text { font: 11px system-ui, sans-serif; fill: #4b5560; }
  .empty { color: #7b858f; font-style: italic; }
</style>
</head>
<body>
<header>
  <h1>sanlock-ts</h1>
  <span id="daemon" class="muted"></span>
  <span id="updated" class="muted"></span>
  <span id="status">connecting…</span>
</header>
<main>
  <div id="lockspaces"></div>
  <section class="card" id="leases-card">
    <h2>Leases held by this host</h2>
    <table id="leases"><thead><tr><th>lockspace</th><th>resource</th><th>mode</th><th>lver</th><th>owner host</th><th>owner pids</th><th>disks</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card" id="counters-card">
    <h2>Counters</h2>
    <div id="counters" class="kv"></div>
  </section>
</main>
<script>
"use strict";
(function () {
  var params = new URLSearchParams(location.search);
  var interval = Math.max(200, Number(params.get("interval")) || 1000);
  var SVGNS = "http://www.w3.org/2000/svg";
  var COLORS = { LIVE: "var(--live)", UNKNOWN: "var(--unknown)", FAIL: "var(--fail)", DEAD: "var(--dead)", FREE: "var(--free)" };

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function badge(s) { return el("span", { "class": "state s-" + s, "data-state": s }, [s]); }
  function kv(label, value, testid) {
    var b = el("b", testid ? { "data-testid": testid } : {}, [String(value)]);
    return el("span", {}, [label + " ", b]);
  }
  function hhmmss(t) { return new Date(t).toLocaleTimeString([], { hour12: false }); }

  function timeline(segs, now, from) {
    var W = 520, H = 16, s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "timeline", "data-segments": segs.length });
    s.appendChild(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#f0f2f4" }));
    var span = Math.max(1, now - from);
    segs.forEach(function (g) {
      var x0 = Math.max(0, (g.from - from) / span * W), x1 = Math.min(W, (Math.max(g.to, g.from + interval) - from) / span * W);
      if (x1 <= 0 || x0 >= W) return;
      var r = svg("rect", { x: x0.toFixed(1), y: 1, width: Math.max(1, x1 - x0).toFixed(1), height: H - 2, fill: COLORS[g.state] || "#555", "data-state": g.state });
      r.appendChild(svg("title", {}, g.state + " " + hhmmss(g.from) + " – " + hhmmss(g.to)));
      s.appendChild(r);
    });
    return s;
  }

  function renewalPlot(points, now) {
    var W = 640, H = 190, L = 46, R = 10, T = 10, B = 26;
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "renewal-plot", "data-points": points.length });
    var pw = W - L - R, ph = H - T - B;
    var from = points.length ? Math.min(points[0].t, now - 60000) : now - 60000;
    var span = Math.max(1, now - from);
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p.readMs, p.writeMs); });
    max = Math.pow(10, Math.ceil(Math.log10(max * 1.05)));
    if (max / 2 >= points.reduce(function (m, p) { return Math.max(m, p.readMs, p.writeMs); }, 0) * 1.05) max = max / 2;
    function x(t) { return L + (t - from) / span * pw; }
    function y(v) { return T + ph - Math.min(v, max) / max * ph; }
    s.appendChild(svg("rect", { x: L, y: T, width: pw, height: ph, fill: "#fafbfc", stroke: "#d9dee3" }));
    for (var i = 0; i <= 4; i++) {
      var v = max * i / 4, yy = y(v);
      s.appendChild(svg("line", { x1: L, x2: L + pw, y1: yy, y2: yy, stroke: "#eceff2" }));
      s.appendChild(svg("text", { x: L - 4, y: yy + 4, "text-anchor": "end" }, (v < 10 ? v.toFixed(1) : v.toFixed(0))));
    }
    s.appendChild(svg("text", { x: 4, y: T + 10 }, "ms"));
    s.appendChild(svg("text", { x: L, y: H - 6 }, hhmmss(from)));
    s.appendChild(svg("text", { x: L + pw, y: H - 6, "text-anchor": "end" }, hhmmss(now)));
    ["readMs", "writeMs"].forEach(function (k) {
      var ok = points.filter(function (p) { return p.code === 0; });
      if (!ok.length) return;
      var d = ok.map(function (p) { return x(p.t).toFixed(1) + "," + y(p[k]).toFixed(1); }).join(" ");
      s.appendChild(svg("polyline", { points: d, fill: "none", stroke: k === "readMs" ? "var(--read)" : "var(--write)", "stroke-width": 1.5, "class": "series-" + k }));
      ok.forEach(function (p) { s.appendChild(svg("circle", { cx: x(p.t).toFixed(1), cy: y(p[k]).toFixed(1), r: 2, fill: k === "readMs" ? "var(--read)" : "var(--write)" })); });
    });
    points.filter(function (p) { return p.code !== 0; }).forEach(function (p) {
      var m = svg("line", { x1: x(p.t), x2: x(p.t), y1: T, y2: T + ph, stroke: "var(--dead)", "stroke-dasharray": "3 2", "class": "renewal-failure" });
      m.appendChild(svg("title", {}, "renewal failed " + p.code + " at " + hhmmss(p.t)));
      s.appendChild(m);
    });
    return s;
  }

  function lockspaceCard(ls, now) {
    var card = el("section", { "class": "card lockspace", "data-lockspace": ls.name });
    card.appendChild(el("h2", {}, ["Lockspace ", el("span", { "class": "ls-name" }, [ls.name]), " ", badge(ls.state)]));
    card.appendChild(el("div", { "class": "kv" }, [
      kv("our host_id", ls.hostId, "our-host-id"),
      kv("generation", ls.generation),
      kv("io_timeout", ls.ioTimeout + " s"),
      kv("last renewal", ls.lastRenewalAgeSeconds === null ? "never" : ls.lastRenewalAgeSeconds + " s ago", "renewal-age"),
      kv("last result", ls.renewalLastResult),
      kv("disk", ls.path + ":" + ls.offset),
    ]));
    var from = now;
    ls.hosts.forEach(function (h) { if (h.timeline.length) from = Math.min(from, h.timeline[0].from); });
    from = Math.min(from, now - 60000);
    card.appendChild(el("h3", {}, ["Hosts"]));
    card.appendChild(el("div", { "class": "legend" }, Object.keys(COLORS).map(function (k) {
      var i = el("i"); i.style.background = COLORS[k]; return el("span", {}, [i, k]);
    }).concat([el("span", {}, ["timeline " + hhmmss(from) + " – " + hhmmss(now)])])));
    if (!ls.hosts.length) card.appendChild(el("p", { "class": "empty" }, ["no host seen yet (waiting for the first renewal)"]));
    else {
      var tb = el("tbody");
      ls.hosts.forEach(function (h) {
        tb.appendChild(el("tr", { "class": "host", "data-host-id": h.hostId }, [
          el("td", { "class": "num" }, [String(h.hostId) + (h.ours ? " (us)" : "")]),
          el("td", {}, [badge(h.state)]),
          el("td", { "class": "num" }, [String(h.generation)]),
          el("td", { "class": "num" }, [String(h.timestamp)]),
          el("td", {}, [h.name]),
          el("td", {}, [timeline(h.timeline, now, from)]),
        ]));
      });
      card.appendChild(el("table", { "class": "hosts" }, [el("thead", {}, [el("tr", {}, ["host_id", "state", "generation", "timestamp", "host name", "liveness"].map(function (t) { return el("th", {}, [t]); }))]), tb]));
    }
    card.appendChild(el("h3", {}, ["Renewal latency"]));
    var last = ls.renewals[ls.renewals.length - 1];
    var r = el("i"); r.style.background = "var(--read)";
    var w = el("i"); w.style.background = "var(--write)";
    card.appendChild(el("div", { "class": "legend" }, [
      el("span", {}, [r, "read"]), el("span", {}, [w, "write"]),
      el("span", { "data-testid": "renewal-count" }, [ls.renewals.length + " renewals"]),
      el("span", {}, [last ? "last: read " + last.readMs + " ms, write " + last.writeMs + " ms" + (last.code ? " (failed " + last.code + ")" : "") : "no renewal yet"]),
    ]));
    card.appendChild(renewalPlot(ls.renewals, now));
    return card;
  }

  function render(st) {
    document.getElementById("daemon").textContent = "host " + st.daemon.hostName + " · pid " + st.daemon.pid + " · up " + st.daemon.uptimeSeconds + " s";
    document.getElementById("updated").textContent = "updated " + hhmmss(st.now);
    var box = document.getElementById("lockspaces");
    box.replaceChildren.apply(box, st.lockspaces.length ? st.lockspaces.map(function (ls) { return lockspaceCard(ls, st.now); }) : [el("section", { "class": "card empty" }, ["no lockspace joined"])]);
    var tb = document.querySelector("#leases tbody");
    tb.replaceChildren.apply(tb, st.leases.length ? st.leases.map(function (l) {
      return el("tr", { "class": "lease", "data-lease": l.lockspace + ":" + l.name }, [
        el("td", {}, [l.lockspace]), el("td", {}, [l.name]),
        el("td", {}, [l.mode + (l.list !== "held" ? " (" + l.list + ")" : "")]),
        el("td", { "class": "num" }, [String(l.lver)]),
        el("td", { "class": "owner" }, ["host_id " + l.ownerHostId + " gen " + l.ownerGeneration + " (" + l.ownerHostName + ")"]),
        el("td", { "class": "pids" }, [l.pids.join(", ") + (l.ownerNames.length ? " " + l.ownerNames.join(", ") : "")]),
        el("td", {}, [l.disks.join(" ")]),
      ]);
    }) : [el("tr", {}, [el("td", { colspan: 7, "class": "empty" }, ["none"])])]);
    var c = st.counters, parts = [kv("I/O timeouts", c.ioTimeouts, "io-timeouts")];
    Object.keys(c.kills).forEach(function (k) { parts.push(kv("kills " + k, c.kills[k])); });
    Object.keys(c.acquire).forEach(function (k) { parts.push(kv("acquire " + k, c.acquire[k])); });
    var cb = document.getElementById("counters");
    cb.replaceChildren.apply(cb, parts);
  }

  var polls = 0;
  function poll() {
    fetch("api/state", { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (st) {
      render(st);
      polls++;
      var s = document.getElementById("status");
      s.textContent = "live";
      s.className = "";
      document.body.setAttribute("data-polls", String(polls));
    }).catch(function (e) {
      var s = document.getElementById("status");
      s.textContent = "disconnected: " + e.message;
      s.className = "bad";
    }).then(function () { setTimeout(poll, interval); });
  }
  poll();
})();
</script>
</body>
</html>
`;
