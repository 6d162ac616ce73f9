// The Outage page's two buttons: disconnect this tab's socket, and connect it again.
// (The demo's controls, not a live binding: everything live on the page is declarative.)
document.addEventListener('click', function (event) {
  var action = event.target.getAttribute && event.target.getAttribute('data-demo-socket');
  if (action && window.serverpush.socket) window.serverpush.socket[action]();
});
