/*!
 * The serverpush inspector (an admin page): fetches its node tables again every two seconds.
 */
(function () {
  'use strict';
  var root = document.getElementById('serverpush-inspector');
  if (!root) return;
  function refresh() {
    fetch(root.dataset.refresh, {credentials: 'same-origin'})
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) { root.innerHTML = html; })
      .catch(function (err) { console.warn('serverpush inspector: could not refresh (' + err + ')'); })
      .then(function () { setTimeout(refresh, 2000); });
  }
  setTimeout(refresh, 2000);
})();
