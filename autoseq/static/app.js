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
