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
