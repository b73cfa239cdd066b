// Filter the listed cases by transition. The choice lives in the URL hash (#transition=KEY),
// so a link or a headless browser can open the report already filtered.
(function () {
  "use strict";
  var select = document.getElementById("transition-filter");
  var cases = Array.prototype.slice.call(document.querySelectorAll("section.case"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("section.group"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-transition]"));
  var counter = document.getElementById("shown-count");

  function fromHash() {
    var match = /(?:^#|&)transition=([^&]*)/.exec(window.location.hash);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function known(key) {
    return !!select && Array.prototype.some.call(select.options, function (o) { return o.value === key; });
  }

  function apply(key) {
    if (!known(key)) { key = ""; }
    var shown = 0;
    cases.forEach(function (el) {
      var keys = (el.getAttribute("data-transitions") || "").split(" ");
      var visible = key === "" || keys.indexOf(key) >= 0;
      el.hidden = !visible;
      if (visible) { shown += 1; }
    });
    groups.forEach(function (group) {
      group.hidden = !group.querySelector("section.case:not([hidden])");
    });
    rows.forEach(function (row) {
      row.classList.toggle("selected", key !== "" && row.getAttribute("data-transition") === key);
    });
    if (select) { select.value = key; }
    if (counter) { counter.textContent = shown + " of " + cases.length + " shown"; }
    document.body.setAttribute("data-filter", key);
  }

  if (select) {
    select.addEventListener("change", function () {
      var key = select.value;
      var url = window.location.pathname + window.location.search + (key ? "#transition=" + encodeURIComponent(key) : "");
      window.history.replaceState(null, "", url);
      apply(key);
    });
  }
  var only = document.getElementById("differences-only");
  if (only) {
    only.addEventListener("change", function () {
      document.body.classList.toggle("differences-only", only.checked);
    });
  }
  window.addEventListener("hashchange", function () { apply(fromHash()); });
  apply(fromHash());
})();
