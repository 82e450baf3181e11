// Draws every Vega-Lite chart a page embeds (<div data-chart><script type="application/json">),
// on load and again after htmx swaps a fragment in (a running run's timeline).
(function () {
  "use strict";
  function draw(root) {
    if (typeof vegaEmbed !== "function") return;
    root.querySelectorAll("[data-chart]").forEach(function (box) {
      var source = box.querySelector("script[type='application/json']");
      if (!source || box.dataset.drawn) return;
      box.dataset.drawn = "1";
      var target = document.createElement("div");
      box.appendChild(target);
      var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
      vegaEmbed(target, JSON.parse(source.textContent), {
        actions: false,
        renderer: "svg",
        theme: dark ? "dark" : undefined,
        config: { background: null, view: { stroke: null }, font: "system-ui, sans-serif" },
      }).catch(function (err) {
        target.textContent = "chart: " + err.message;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();

// Explore: Ctrl+Enter (Cmd+Enter) in the SQL editor runs the query (submits its GET form, so the
// address keeps the query); Tab inserts two spaces instead of leaving the editor.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var editor = event.target;
    if (!(editor instanceof HTMLTextAreaElement) || !editor.classList.contains("sql")) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (editor.form) editor.form.requestSubmit();
    } else if (event.key === "Tab" && !event.shiftKey) {
      event.preventDefault();
      editor.setRangeText("  ", editor.selectionStart, editor.selectionEnd, "end");
    }
  });
})();
