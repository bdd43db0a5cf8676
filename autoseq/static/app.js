// AutoSeq's small bit of JavaScript: htmx behaviour that applies to every page.
document.addEventListener("htmx:responseError", function (event) {
  // Show the server's error page fragment in place instead of failing silently.
  const xhr = event.detail.xhr;
  if (xhr && xhr.responseText && event.detail.target) {
    event.detail.target.innerHTML = xhr.responseText;
  }
});
document.addEventListener("htmx:sendError", function (event) {
  if (event.detail.target) {
    event.detail.target.insertAdjacentHTML("afterbegin",
      '<div class="flash flash-error" role="alert">AutoSeq could not be reached. Check your connection and try again.</div>');
  }
});
// The Content-Security-Policy allows no inline script or style, so what needed them lives here.
// A form with data-confirm asks before it submits.
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
// Bars with data-pct get their width (the rotation's spread chart), on load and after swaps.
function sizeBars(root) {
  root.querySelectorAll("[data-pct]").forEach(function (bar) {
    bar.style.width = bar.dataset.pct + "%";
  });
}
document.addEventListener("DOMContentLoaded", function () { sizeBars(document); });
document.addEventListener("htmx:load", function (event) { sizeBars(event.detail.elt); });

// The Sequences "Sort by" select follows a sort chosen by clicking a column header.
document.addEventListener("htmx:afterSettle", function () {
  const table = document.querySelector("table[data-sort]");
  const select = document.getElementById("seq-sort");
  if (table && select && select.value !== table.dataset.sort) {
    select.value = table.dataset.sort;
  }
});

// Narrow screens: the sidebar's Menu button shows and hides the navigation (CSS hides it only
// once this script has run, so without JavaScript the navigation simply stays open).
document.documentElement.classList.add("js");
document.addEventListener("click", function (event) {
  const toggle = event.target.closest(".nav-toggle");
  if (!toggle) return;
  const sidebar = toggle.closest(".sidebar");
  const open = !sidebar.classList.contains("open");
  sidebar.classList.toggle("open", open);
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
});

// Live while work runs: the top bar's activity indicator announces "enrollments-changed" when
// the queued count moves; the parts of the page marked data-live-refresh reload themselves
// ("fragment": the view answers htmx with this part; "select": pick it out of the whole page).
document.body.addEventListener("enrollments-changed", function () {
  document.querySelectorAll("[data-live-refresh]").forEach(function (el) {
    const options = { target: el, swap: "innerHTML" };
    if (el.dataset.liveRefresh === "select") {
      options.select = "#" + el.id;
      options.swap = "outerHTML";
    }
    htmx.ajax("GET", window.location.pathname + window.location.search, options);
  });
});

// Sortable tables (class "sortable"): each header with data-sort becomes a button that sorts the
// rows by that column, both ways; aria-sort on the header says which way (and CSS draws an arrow).
// Ties keep their current order (Array.prototype.sort is stable), so the order never jumps.
function makeSortable(table) {
  if (table.dataset.sortReady) return;
  table.dataset.sortReady = "1";
  const headers = Array.from(table.querySelectorAll("thead th[data-sort]"));
  headers.forEach(function (th) {
    const button = document.createElement("button");
    button.type = "button";
    while (th.firstChild) button.appendChild(th.firstChild);
    th.appendChild(button);
    button.addEventListener("click", function () {
      const index = Array.from(th.parentNode.children).indexOf(th);
      const numeric = th.dataset.sort === "num";
      const direction = th.getAttribute("aria-sort") === (numeric ? "descending" : "ascending")
        ? (numeric ? "ascending" : "descending") : (numeric ? "descending" : "ascending");
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", direction);
      const sign = direction === "ascending" ? 1 : -1;
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const key = function (row) {
        const cell = row.cells[index];
        const raw = cell ? (cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim()) : "";
        return numeric ? parseFloat(raw) || 0 : raw.toLowerCase();
      };
      rows.sort(function (a, b) {
        const x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * sign;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
}
function initTables(root) {
  root.querySelectorAll("table.sortable").forEach(makeSortable);
}
document.addEventListener("DOMContentLoaded", function () { initTables(document); });
document.addEventListener("htmx:afterSettle", function (event) { initTables(event.target); });
// "Show all" under a long breakdown lifts its height cap.
document.addEventListener("click", function (event) {
  const button = event.target.closest(".show-all");
  if (!button) return;
  const region = document.getElementById(button.getAttribute("aria-controls"));
  const all = region.classList.toggle("capped") === false;
  button.setAttribute("aria-expanded", all ? "true" : "false");
  button.textContent = all ? "Show fewer" : "Show all";
});

// The rotation editor: weights only in Weighted mode, a running total of the weights, and a new
// empty member row as soon as the last one names a mailbox (the form accepts any number of rows).
function initRotationEditor(root) {
  const table = root.querySelector("table.rotation-members");
  if (!table || table.dataset.editorReady) return;
  table.dataset.editorReady = "1";
  const form = table.closest("form");
  const mode = form && form.querySelector("select[name=mode]");
  const total = document.createElement("p");
  total.className = "weight-total";
  total.setAttribute("aria-live", "polite");
  table.closest(".table-card-scroll").after(total);

  function update() {
    const weighted = !mode || mode.value === "weighted";
    table.classList.toggle("even", !weighted);
    total.hidden = !weighted;
    let sum = 0;
    let rows = 0;
    table.querySelectorAll("tbody tr").forEach(function (row) {
      const box = row.querySelector("select");
      const weight = row.querySelector("input.weight");
      const removed = row.querySelector("input[type=checkbox]");
      if (box && box.value && !(removed && removed.checked)) {
        rows += 1;
        sum += weight ? parseInt(weight.value, 10) || 0 : 0;
      }
    });
    total.textContent = rows
      ? "Weights add up to " + sum + "% " + (sum === 100 ? "✓" : "(they must add up to 100%)")
      : "";
    total.classList.toggle("errors", rows > 0 && sum !== 100);
  }

  function addRowIfLastFilled() {
    const body = table.tBodies[0];
    const last = body.rows[body.rows.length - 1];
    const box = last && last.querySelector("select");
    if (!box || !box.value) return;
    const match = /members-(\d+)-/.exec(box.name);
    if (!match) return;
    const next = parseInt(match[1], 10) + 1;
    const row = last.cloneNode(true);
    row.querySelectorAll("[name], [id], [for]").forEach(function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        const value = el.getAttribute(attr);
        if (value) el.setAttribute(attr, value.replace(/members-\d+-/, "members-" + next + "-"));
      });
    });
    row.querySelectorAll("[aria-label]").forEach(function (el) {
      el.setAttribute("aria-label", el.getAttribute("aria-label").replace(/\d+$/, String(body.rows.length + 1)));
    });
    row.querySelectorAll("select").forEach(function (el) { el.value = ""; });
    row.querySelectorAll("input.weight").forEach(function (el) { el.value = ""; });
    row.querySelectorAll("input[type=checkbox]").forEach(function (el) { el.checked = false; });
    row.querySelectorAll(".errors, button").forEach(function (el) { el.remove(); });
    if (row.cells[0]) row.cells[0].textContent = String(body.rows.length + 1);
    body.appendChild(row);
  }

  form.addEventListener("input", update);
  form.addEventListener("change", function () { addRowIfLastFilled(); update(); });
  update();
}
document.addEventListener("DOMContentLoaded", function () { initRotationEditor(document); });

// Time zones: a filter box above the long list (type "york" to find America/New_York), and on a
// new workspace the browser's own zone chosen by default.
function initTimezone(select) {
  if (!select || select.dataset.tzReady) return;
  select.dataset.tzReady = "1";
  if (select.closest("form[data-new-workspace]")) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && Array.from(select.options).some(function (o) { return o.value === zone; })) {
      select.value = zone;
    }
  }
  const filter = document.createElement("input");
  filter.type = "search";
  filter.className = "tz-filter";
  filter.placeholder = "Filter time zones";
  filter.setAttribute("aria-label", "Filter time zones");
  filter.setAttribute("aria-controls", select.id);
  select.before(filter);
  filter.addEventListener("input", function () {
    const q = filter.value.trim().toLowerCase().replace(/\s+/g, "_");
    let first = null;
    Array.from(select.options).forEach(function (o) {
      const show = !q || o.value.toLowerCase().includes(q);
      o.hidden = !show;
      if (show && !first) first = o;
    });
    if (first && select.selectedOptions[0] && select.selectedOptions[0].hidden) select.value = first.value;
  });
}
document.addEventListener("DOMContentLoaded", function () {
  initTimezone(document.querySelector("select#timezone"));
});
