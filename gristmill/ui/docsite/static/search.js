// The catalog's search in the docs site, with no server: every word must be in the asset's text
// (name, kind, description, owner, tags) or in one column's (name, description), as the served
// search does; a column match names the column. The search is kept in ?q= so it is a link.
(function () {
  "use strict";
  var input = document.getElementById("docs-search");
  var count = document.getElementById("catalog-count");
  var index = {};
  (window.GRISTMILL_SEARCH || []).forEach(function (entry) { index[entry.name] = entry; });
  var rows = Array.prototype.slice.call(document.querySelectorAll("#results tbody tr"));
  var countText = count ? count.textContent : "";

  function every(words, text) {
    return words.every(function (w) { return text.indexOf(w) >= 0; });
  }

  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var link = row.querySelector("td a");
      var entry = link && index[link.textContent.trim()];
      if (!entry) { return; }
      var columns = entry.columns.filter(function (c) { return every(words, c[1]); }).map(function (c) { return c[0]; });
      var hit = !words.length || every(words, entry.text) || columns.length > 0;
      row.hidden = !hit;
      var note = row.querySelector(".docs-columns");
      if (!note) {
        note = document.createElement("div");
        note.className = "small muted docs-columns";
        row.cells[0].appendChild(note);
      }
      note.textContent = hit && words.length && !every(words, entry.text) ? "columns: " + columns.join(", ") : "";
      if (hit) { shown += 1; }
    });
    if (count) {
      count.textContent = words.length ? shown + " of " + rows.length + " assets match \u201c" + input.value + "\u201d" : countText;
    }
  }

  var asked = new URLSearchParams(location.search).get("q");
  if (asked) { input.value = asked; }
  input.addEventListener("input", function () {
    apply();
    try {
      history.replaceState(null, "", input.value ? "?q=" + encodeURIComponent(input.value) : location.pathname);
    } catch (e) { /* some browsers refuse history changes on file:// pages: the search still works */ }
  });
  apply();
})();
