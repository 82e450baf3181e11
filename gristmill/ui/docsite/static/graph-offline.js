// The asset graph in the docs site, with no server: the page's requests are answered from
// GRISTMILL_GRAPH (graph-data.js, written by `gristmill docs build`), since a page opened from
// file:// may not fetch files; the server addresses its script writes into links are turned
// into the site's files when clicked.
(function () {
  "use strict";
  var data = window.GRISTMILL_GRAPH;
  var served = window.fetch;

  function answer(body, status) {
    return Promise.resolve(new Response(JSON.stringify(body), {
      status: status || 200, headers: { "Content-Type": "application/json" }
    }));
  }

  window.fetch = function (url) {
    var asked = new URL(String(url), "http://site.invalid");
    if (asked.pathname === "/graph/layout.json") { return answer(data.layout); }
    if (asked.pathname === "/graph/asset.json") {
      var found = data.assets[asked.searchParams.get("name")];
      return found ? answer(found) : answer({ error: "no such asset", hint: null }, 404);
    }
    if (asked.pathname === "/graph/select.json") {
      return answer({ error: "selections need gristmill serve", hint: "the search works here" }, 400);
    }
    return served.apply(window, arguments);
  };

  function file(path) {
    var parts = path.split("?")[0].split("/").filter(Boolean);
    if (parts[0] === "catalog" && parts.length === 3) { return "catalog/" + parts[1] + "/" + parts[2] + ".html"; }
    if (parts[0] === "graph" && parts[1] === "columns" && parts.length === 5) { return parts.join("/") + ".html"; }
    if (!parts.length || parts[0] === "catalog") { return "index.html"; }
    return null;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href^='/']") : null;
    if (!link) { return; }
    var target = file(link.getAttribute("href"));
    if (target) { link.setAttribute("href", target); } else { event.preventDefault(); }
  }, true);
})();
