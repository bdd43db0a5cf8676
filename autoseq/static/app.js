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
