/* Draws every figure of the page from its JSON block and makes tables sortable. No network, no inline code. */
(function () {
  "use strict";

  function drawFigures() {
    var blocks = document.querySelectorAll("script[type='application/json'][data-figure]");
    var drawn = [];
    blocks.forEach(function (block) {
      var spec = JSON.parse(block.textContent);
      var target = document.getElementById(block.getAttribute("data-figure"));
      drawn.push(window.Plotly.newPlot(target, spec.data, spec.layout, spec.config || {}));
    });
    return Promise.all(drawn);
  }

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var key = cell.getAttribute("data-sort");
    if (key === null) { return cell.textContent.trim().toLowerCase(); }
    if (key === "") { return null; }
    var number = Number(key);
    return isNaN(number) ? key.toLowerCase() : number;
  }

  function sortBy(table, index, header) {
    var body = table.tBodies[0];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index);
      if (x === y) { return 0; }
      if (x === null) { return 1; }  /* missing values last in either direction */
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function makeSortable() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (header, index) {
        header.setAttribute("tabindex", "0");
        header.setAttribute("title", "Sort by this column");
        header.addEventListener("click", function () { sortBy(table, index, header); });
        header.addEventListener("keydown", function (event) {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, index, header); }
        });
      });
    });
  }

  makeSortable();
  drawFigures().then(
    function () { document.body.setAttribute("data-figures", "ready"); },
    function (error) { document.body.setAttribute("data-figures", "failed"); console.error(error); }
  );
})();
