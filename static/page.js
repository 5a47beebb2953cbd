// Behaviours shared by every page. Forms with data-confirm ask first.
document.addEventListener("submit", function (e) {
  var msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});
