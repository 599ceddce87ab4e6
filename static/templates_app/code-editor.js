// Line numbers beside HTML textareas (data-code-editor). No dependencies, no CDN.
(function () {
  "use strict";
  function attach(area) {
    var wrap = document.createElement("div");
    wrap.className = "code-editor";
    var gutter = document.createElement("pre");
    gutter.className = "code-gutter";
    gutter.setAttribute("aria-hidden", "true");
    area.parentNode.insertBefore(wrap, area);
    wrap.appendChild(gutter);
    wrap.appendChild(area);
    function render() {
      var count = area.value.split("\n").length;
      var lines = [];
      for (var i = 1; i <= count; i++) lines.push(i);
      gutter.textContent = lines.join("\n");
      gutter.scrollTop = area.scrollTop;
    }
    area.addEventListener("input", render);
    area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
    area.addEventListener("keydown", function (event) {
      // Tab indents instead of leaving the editor; Escape then Tab still moves focus on.
      if (event.key === "Tab" && !event.shiftKey && !area.dataset.escaped) {
        event.preventDefault();
        var start = area.selectionStart;
        area.setRangeText("  ", start, area.selectionEnd, "end");
        render();
      }
      area.dataset.escaped = event.key === "Escape" ? "1" : "";
    });
    render();
  }
  document.querySelectorAll("textarea[data-code-editor]").forEach(attach);
})();
