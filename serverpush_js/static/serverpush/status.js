/*!
 * serverpush status.js: the connection's state where CSS can see it, with no code
 * (serverpush_js/README.md, "Connection state"). Load it after serverpush.js.
 *
 *   <html data-serverpush-state="live">            set on the root element, always
 *   <span data-serverpush-status></span>            its text: the state
 *   <span data-serverpush-status="received"></span> its text: a count (received, replayed, healed)
 *
 * States: connecting, live, reconnecting, offline (the page's own code disconnected it),
 * healed (live again after the server healed what the log could not replay), reloading
 * (a resync reloads the page, or waits for the user to leave a field first), refused
 * (stopped for good), idle (the page has nothing to connect for).
 */
(function () {
  'use strict';

  var api = window.serverpush;
  if (!api) throw new Error('serverpush: load serverpush.js before status.js');

  var seen = {live: false, healed: false, offline: false, reloading: false};
  var replayed = 0;

  // serverpush.js assigns these fields wherever its state changes; watching the
  // assignments keeps the page in step with every one of them.
  ['state', 'received', 'healed'].forEach(function (field) {
    var value = api[field];
    Object.defineProperty(api, field, {
      configurable: true,
      enumerable: true,
      get: function () { return value; },
      set: function (next) { value = next; render(); }
    });
  });

  function state() {
    if (seen.reloading || (api.refreshed && api.refreshed.reload)) return 'reloading';
    if (api.state === 'live') {
      seen.live = true;
      return seen.healed ? 'healed' : 'live';
    }
    if (api.state === 'refused') return 'refused';
    if (api.state === 'disconnected' && !api.token) return 'idle';
    if (api.state === 'disconnected' && seen.offline) return 'offline';
    return seen.live ? 'reconnecting' : 'connecting';
  }

  var COUNTS = {
    received: function () { return api.received || 0; },
    replayed: function () { return replayed; },
    healed: function () { return api.healed || 0; }
  };

  function render() {
    var now = state();
    var root = document.documentElement;
    if (root.getAttribute('data-serverpush-state') !== now) root.setAttribute('data-serverpush-state', now);
    Array.prototype.forEach.call(document.querySelectorAll('[data-serverpush-status]'), function (el) {
      var what = el.getAttribute('data-serverpush-status') || 'state';
      var text = what === 'state' ? now : COUNTS[what] ? String(COUNTS[what]()) : '';
      if (el.textContent !== text) el.textContent = text;
    });
  }

  document.addEventListener('serverpush_ready', function (event) {
    replayed += (event.detail && event.detail.replayed) || 0;
    render();
  });
  document.addEventListener('serverpush_disconnect', function (event) {
    seen.healed = false;
    seen.offline = !!event.detail && event.detail.reason === 'io client disconnect';
    render();
  });
  document.addEventListener('serverpush_resynced', function () {
    seen.healed = true;
    render();
  });
  document.addEventListener('serverpush_reloading', function () {
    seen.reloading = true;
    render();
  });
  // serverpush.js decides whether it reloads after this event's handlers ran.
  document.addEventListener('serverpush_refresh', function () { setTimeout(render, 0); });

  render();
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', render);
})();
