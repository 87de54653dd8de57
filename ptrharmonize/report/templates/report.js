/* ptrharmonize report: filter, sort and search the rule and issue tables. No network, no
   dependencies; without JavaScript the page is a plain, complete document. A filter can be given
   in the address: report.html#filter:center=B02&severity=error&q=storage */
(function () {
  "use strict";
  var KEYS = ["center", "table", "category", "severity", "status"];
  var bar = document.getElementById("filterbar");
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.filterable > tbody > tr"));
  var details = Array.prototype.slice.call(document.querySelectorAll("details"));
  var wasOpen = details.map(function (d) { return d.open; });
  var blocks = Array.prototype.slice.call(document.querySelectorAll("[data-center-block]"));
  /* The search also finds an issue row by its rule's text (what is checked), read once from the
     page's data block rather than repeated on every row. */
  var ruleText = {};
  var block = document.getElementById("qa-data");
  if (block) {
    try {
      var info = JSON.parse(block.textContent).rule_info || {};
      Object.keys(info).forEach(function (k) { ruleText[k] = info[k].text || ""; });
    } catch (e) { ruleText = {}; }
  }
  var texts = rows.map(function (r) {
    return (r.textContent + " " + (ruleText[r.getAttribute("data-rule")] || "")).toLowerCase();
  });

  function control(key) { return bar ? bar.querySelector("[name='" + key + "']") : null; }

  /* A row matches on data-KEY, or on one of the space-separated values of data-KEYs (a row
     that counts several centers, e.g. errors by rule). */
  function matches(r, key, value) {
    if (r.getAttribute("data-" + key) === value) { return true; }
    var many = r.getAttribute("data-" + key + "s");
    return many !== null && (" " + many + " ").indexOf(" " + value + " ") !== -1;
  }

  function current() {
    var f = {};
    KEYS.concat(["q"]).forEach(function (k) {
      var c = control(k);
      if (c && c.value) { f[k] = c.value; }
    });
    return f;
  }

  function apply(updateHash) {
    var f = current();
    var active = Object.keys(f).length > 0;
    var q = (f.q || "").toLowerCase();
    var shown = 0;
    rows.forEach(function (r, i) {
      var ok = KEYS.every(function (k) { return !f[k] || matches(r, k, f[k]); });
      if (ok && q) { ok = texts[i].indexOf(q) !== -1; }
      r.hidden = !ok;
      if (ok) { shown += 1; }
    });
    details.forEach(function (d, i) {
      var inner = d.querySelectorAll("table.filterable > tbody > tr");
      if (!inner.length) { return; }
      if (!active) { d.hidden = false; d.open = wasOpen[i]; return; }
      var any = Array.prototype.some.call(inner, function (r) { return !r.hidden; });
      d.hidden = !any;
      d.open = any;
    });
    blocks.forEach(function (b) {
      b.hidden = !!f.center && b.getAttribute("data-center-block") !== f.center;
    });
    var out = document.getElementById("filter-count");
    if (out) { out.textContent = active ? shown + " of " + rows.length + " rows shown" : rows.length + " rows"; }
    if (updateHash) {
      var parts = Object.keys(f).map(function (k) { return k + "=" + encodeURIComponent(f[k]); });
      try { history.replaceState(null, "", parts.length ? "#filter:" + parts.join("&") : location.pathname); } catch (e) { /* file: URLs may refuse */ }
    }
  }

  function fromHash() {
    var h = location.hash || "";
    if (h.indexOf("#filter:") !== 0) { return; }
    h.slice(8).split("&").forEach(function (p) {
      var kv = p.split("=");
      var c = control(kv[0]);
      if (c && kv.length === 2) { c.value = decodeURIComponent(kv[1].replace(/\+/g, " ")); }
    });
  }

  function cellValue(tr, idx, numeric) {
    var td = tr.children[idx];
    if (!td) { return numeric ? -Infinity : ""; }
    var v = td.getAttribute("data-sort-value");
    if (v === null) { v = td.textContent.trim(); }
    if (!numeric) { return v.toLowerCase(); }
    var n = parseFloat(v.replace(/[,%\s]/g, "").replace("–", ""));
    return isNaN(n) ? -Infinity : n;
  }

  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-sort") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (o) { o.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var list = Array.prototype.slice.call(body.rows);
    list.sort(function (a, b) {
      var x = cellValue(a, idx, numeric), y = cellValue(b, idx, numeric);
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    list.forEach(function (r) { body.appendChild(r); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.filterable th[data-sort], table.sortable th[data-sort]"), function (th) {
    var b = document.createElement("button");
    b.type = "button";
    b.title = "Sort by " + th.textContent.trim();
    while (th.firstChild) { b.appendChild(th.firstChild); }
    th.appendChild(b);
    b.addEventListener("click", function () { sortBy(th); });
  });

  if (bar) {
    bar.hidden = false;
    Array.prototype.forEach.call(bar.querySelectorAll("select, input"), function (c) {
      c.addEventListener(c.tagName === "INPUT" ? "input" : "change", function () { apply(true); });
    });
    var reset = bar.querySelector("button[type=reset]");
    if (reset) { reset.addEventListener("click", function () { setTimeout(function () { apply(true); }, 0); }); }
    fromHash();
    apply(false);
    window.addEventListener("hashchange", function () { fromHash(); apply(false); });
  }

  /* Printing: every section open, whatever was collapsed on screen. */
  var printOpen = null;
  window.addEventListener("beforeprint", function () {
    printOpen = details.map(function (d) { return d.open; });
    details.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    if (printOpen) { details.forEach(function (d, i) { d.open = printOpen[i]; }); }
  });
})();
