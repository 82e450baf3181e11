/* The asset graph: draws the server's layout in one SVG, with pan, zoom, search, selections,
   colouring and a details panel. No library: the layout is done, drawing is one innerHTML.
   State lives in the query string (q, select, colour, focus, view) so a pasted link reopens it. */
(function () {
  "use strict";
  var svg = document.getElementById("graph");
  var view = document.getElementById("graph-view");
  var search = document.getElementById("graph-search");
  var selectBox = document.getElementById("graph-select");
  var colourBox = document.getElementById("graph-colour");
  var message = document.getElementById("graph-message");
  var legend = document.getElementById("graph-legend");
  var details = document.getElementById("graph-details");
  var HALF = 14; // half a node's height
  var FAR = 0.45; // below this zoom, labels are hidden (level of detail)
  var KNOWN = {
    status: { success: "#b2f2bb", failed: "#ffa8a8", error: "#ffa8a8", skipped: "#dee2e6", cancelled: "#ffd8a8",
      running: "#a5d8ff", "never run": "#ffffff", metric: "#e5dbff" },
    freshness: { fresh: "#b2f2bb", stale: "#ffc078", "no policy": "#e9ecef", "never built": "#ffffff",
      unknown: "#dee2e6", metric: "#e5dbff" },
  };
  var PALETTE = ["#a5d8ff", "#b2f2bb", "#ffec99", "#fcc2d7", "#d0bfff", "#99e9f2", "#ffd8a8", "#c3fae8",
    "#eebefa", "#d8f5a2", "#bac8ff", "#ffc9c9"];
  var params = new URLSearchParams(location.search);
  var t = { x: 0, y: 0, k: 1 };
  var data = null, nodes = [], edges = [], byName = new Map(), matches = [], current = -1;

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }
  function say(text, error) { message.textContent = text || ""; message.classList.toggle("error", !!error); }

  function edgePath(p) {
    // flat x, y pairs from parent to child: leave the parent's bottom, enter the child's top
    var x0 = p[0], y0 = p[1] + HALF, d = "M" + x0 + "," + y0;
    for (var i = 2; i < p.length; i += 2) {
      var x1 = p[i], y1 = i + 2 >= p.length ? p[i + 1] - HALF : p[i + 1], m = (y0 + y1) / 2;
      d += "C" + x0 + "," + m + " " + x1 + "," + m + " " + x1 + "," + y1;
      x0 = x1; y0 = y1;
    }
    return d;
  }

  function draw(d) {
    data = d;
    var n = d.nodes, parts = ['<g class="edges">'];
    for (var e = 0; e < d.edges.length; e++) parts.push('<path class="e" d="' + edgePath(d.edges[e][2]) + '"/>');
    parts.push('</g><g class="nodes">');
    for (var i = 0; i < n.name.length; i++) {
      var name = n.name[i], w = n.w[i], short = name.slice(name.indexOf(".") + 1);
      var room = Math.floor((w - 14) / 7.2);
      var label = short.length > room ? short.slice(0, room - 1) + "…" : short;
      byName.set(name, i);
      parts.push('<g class="n" data-i="' + i + '" transform="translate(' + n.x[i] + "," + n.y[i] + ')"><title>' +
        esc(name) + '</title><rect x="' + (-w / 2) + '" y="-' + HALF + '" width="' + w + '" height="' + 2 * HALF +
        '"/><text>' + esc(label) + "</text></g>");
    }
    parts.push("</g>");
    view.innerHTML = parts.join("");
    nodes = view.querySelectorAll(".n");
    edges = view.querySelectorAll(".e");
    colourBy(params.get("colour") || "status");
    restore();
    requestAnimationFrame(function () {
      window.gristmillGraph = { nodes: nodes.length, edges: edges.length, drawnAt: performance.now() };
      svg.setAttribute("data-ready", "true");
    });
  }

  // ---- view: pan and zoom -------------------------------------------------------------------
  var urlTimer = 0;
  function apply() {
    view.setAttribute("transform", "translate(" + t.x + "," + t.y + ") scale(" + t.k + ")");
    svg.classList.toggle("far", t.k < FAR);
    clearTimeout(urlTimer);
    urlTimer = setTimeout(remember, 200);
  }
  function remember() {
    var p = new URLSearchParams();
    if (search.value) p.set("q", search.value);
    if (selectBox.value) p.set("select", selectBox.value);
    if (colourBox.value !== "status") p.set("colour", colourBox.value);
    if (details.dataset.name) p.set("focus", details.dataset.name);
    p.set("view", [Math.round(t.x), Math.round(t.y), t.k.toFixed(3)].join(","));
    history.replaceState(null, "", location.pathname + "?" + p.toString());
  }
  function fitTo(indexes) {
    if (!indexes.length) return;
    var n = data.nodes, x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    indexes.forEach(function (i) {
      x0 = Math.min(x0, n.x[i] - n.w[i] / 2); x1 = Math.max(x1, n.x[i] + n.w[i] / 2);
      y0 = Math.min(y0, n.y[i] - HALF); y1 = Math.max(y1, n.y[i] + HALF);
    });
    var box = svg.getBoundingClientRect(), pad = 40;
    t.k = Math.min(1.5, (box.width - pad) / (x1 - x0 + pad), (box.height - pad) / (y1 - y0 + pad));
    t.x = box.width / 2 - t.k * (x0 + x1) / 2;
    t.y = box.height / 2 - t.k * (y0 + y1) / 2;
    apply();
  }
  function all() { var a = []; for (var i = 0; i < nodes.length; i++) a.push(i); return a; }
  function centre(i) {
    var box = svg.getBoundingClientRect();
    t.k = Math.max(t.k, 1);
    t.x = box.width / 2 - t.k * data.nodes.x[i];
    t.y = box.height / 2 - t.k * data.nodes.y[i];
    apply();
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var box = svg.getBoundingClientRect(), px = ev.clientX - box.left, py = ev.clientY - box.top;
    var k = Math.min(4, Math.max(0.02, t.k * Math.exp(-ev.deltaY * 0.0015)));
    t.x = px - (px - t.x) * k / t.k; t.y = py - (py - t.y) * k / t.k; t.k = k;
    apply();
  }, { passive: false });
  var drag = null;
  svg.addEventListener("pointerdown", function (ev) {
    drag = { x: ev.clientX, y: ev.clientY, tx: t.x, ty: t.y, moved: false };
  });
  window.addEventListener("pointermove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true; svg.classList.add("dragging");
    t.x = drag.tx + dx; t.y = drag.ty + dy; apply();
  });
  window.addEventListener("pointerup", function (ev) {
    var was = drag; drag = null; svg.classList.remove("dragging");
    if (was && !was.moved) {
      var g = ev.target.closest && ev.target.closest(".n");
      if (g) open(data.nodes.name[+g.getAttribute("data-i")]);
    }
  });

  // ---- colour -------------------------------------------------------------------------------
  function colourBy(what) {
    colourBox.value = what;
    var values = what === "kind" ? data.nodes.kind : data.attributes[what];
    var known = KNOWN[what] || {}, colours = {}, next = 0;
    var rects = view.querySelectorAll(".n rect");
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (!(v in colours)) colours[v] = known[v] || PALETTE[next++ % PALETTE.length];
      rects[i].style.fill = colours[v];
    }
    legend.innerHTML = Object.keys(colours).sort().map(function (v) {
      return '<div><i style="background:' + colours[v] + '"></i>' + esc(v) + "</div>";
    }).join("");
    remember();
  }
  colourBox.addEventListener("change", function () { colourBy(colourBox.value); });

  // ---- search -------------------------------------------------------------------------------
  function find(text) {
    text = text.trim().toLowerCase();
    matches = []; current = -1;
    for (var i = 0; i < nodes.length; i++) {
      var hit = text !== "" && data.nodes.name[i].toLowerCase().indexOf(text) >= 0;
      nodes[i].classList.toggle("match", hit);
      if (hit) matches.push(i);
    }
    say(text && !matches.length ? "no asset matches “" + text + "”" : text ? matches.length + " found" : "", text && !matches.length);
    if (matches.length) { current = 0; centre(matches[0]); }
    remember();
  }
  var searchTimer = 0;
  search.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { find(search.value); }, 150);
  });
  search.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && matches.length) { current = (current + 1) % matches.length; centre(matches[current]); }
  });

  // ---- selection (the CLI's syntax, parsed by the server) -------------------------------------
  function choose(expr, fit) {
    expr = expr.trim();
    if (!expr) {
      svg.classList.remove("selecting");
      remember();
      return Promise.resolve();
    }
    return fetch("/graph/select.json?expr=" + encodeURIComponent(expr)).then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer.error) { say(answer.error + (answer.hint ? " — " + answer.hint : ""), true); return; }
        var chosen = new Set(answer.names.map(function (name) { return byName.get(name); }));
        for (var i = 0; i < nodes.length; i++) nodes[i].classList.toggle("in", chosen.has(i));
        for (var e = 0; e < edges.length; e++) {
          var edge = data.edges[e];
          edges[e].classList.toggle("in", chosen.has(edge[0]) && chosen.has(edge[1]));
        }
        svg.classList.add("selecting");
        say(answer.names.length + " selected");
        if (fit) fitTo(Array.from(chosen));
        remember();
      });
  }
  selectBox.addEventListener("keydown", function (ev) { if (ev.key === "Enter") choose(selectBox.value, true); });
  selectBox.addEventListener("change", function () { choose(selectBox.value, true); });
  document.getElementById("graph-fit").addEventListener("click", function () { fitTo(all()); });

  // ---- details ------------------------------------------------------------------------------
  function list(names) {
    return names.length ? "<ul>" + names.map(function (n) {
      return '<li><a href="#" data-open="' + esc(n) + '">' + esc(n) + "</a></li>";
    }).join("") + "</ul>" : "<p>none</p>";
  }
  function open(name) {
    var i = byName.get(name);
    if (i === undefined) return;
    view.querySelectorAll(".n.focus").forEach(function (g) { g.classList.remove("focus"); });
    nodes[i].classList.add("focus");
    details.dataset.name = name;
    remember();
    fetch("/graph/asset.json?name=" + encodeURIComponent(name)).then(function (r) { return r.json(); }).then(function (a) {
      if (a.error) { say(a.error, true); return; }
      var cols = a.columns.map(function (c) {
        return '<li><a class="column" href="/graph/columns/' + encodeURIComponent(a.schema) + "/" +
          encodeURIComponent(a.short) + "/" + encodeURIComponent(c) + '">' + esc(c) + "</a></li>";
      }).join("");
      details.innerHTML = '<button class="close" title="Close" type="button">×</button><h2>' + esc(a.name) + "</h2>" +
        "<div>" + esc(a.kind) + (a.file ? " · " + esc(a.file) : "") + "</div>" +
        (a.catalog ? '<p><a class="catalog" href="' + a.catalog + '">Open in the catalog</a></p>' : "") +
        "<h3>Columns (click for their lineage)</h3>" + (cols ? "<ul>" + cols + "</ul>" : "<p>unknown until analysed</p>") +
        (a.owner ? "<div>owner: " + esc(a.owner) + "</div>" : "") +
        (a.checks.length ? "<h3>Checks</h3><ul>" + a.checks.map(function (c) { return "<li>" + esc(c) + "</li>"; }).join("") + "</ul>" : "") +
        "<h3>Upstream</h3>" + list(a.upstream) + "<h3>Downstream</h3>" + list(a.downstream);
      details.hidden = false;
    });
  }
  details.addEventListener("click", function (ev) {
    var target = ev.target;
    if (target.classList.contains("close")) {
      details.hidden = true; delete details.dataset.name;
      view.querySelectorAll(".n.focus").forEach(function (g) { g.classList.remove("focus"); });
      remember();
    } else if (target.dataset.open) {
      ev.preventDefault(); open(target.dataset.open); centre(byName.get(target.dataset.open));
    }
  });

  // ---- start: the state of the pasted link --------------------------------------------------
  function restore() {
    search.value = params.get("q") || "";
    selectBox.value = params.get("select") || "";
    var v = (params.get("view") || "").split(",").map(Number);
    if (v.length === 3 && v.every(isFinite)) { t = { x: v[0], y: v[1], k: v[2] }; apply(); } else fitTo(all());
    if (search.value) find(search.value);
    if (selectBox.value) choose(selectBox.value, v.length !== 3);
    if (params.get("focus")) open(params.get("focus"));
  }

  fetch("/graph/layout.json").then(function (r) {
    if (!r.ok) throw new Error("the layout could not be read (" + r.status + ")");
    return r.json();
  }).then(draw).catch(function (err) { say(String(err.message || err), true); });
})();
