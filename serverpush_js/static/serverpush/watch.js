/*!
 * serverpush watch.js: watch objects from the page, as django-pushy's subscribe did
 * (docs/protocol.md, "Watching objects"). Load it after serverpush.js.
 *
 *   var sub = serverpush.subscribe({% serverpush_watch item %}, {
 *     create: function (data, meta) {}, update: function (data, meta) {}, delete: function (data, meta) {}
 *     // meta: {op, model, pk, cursor, replay, left}; left: the object left a watched filter (a delete)
 *   });
 *   sub.unsubscribe();
 */
(function () {
  'use strict';

  var api = window.serverpush;
  if (!api) throw new Error('serverpush: load serverpush.js before watch.js');

  // Acknowledgement codes after which only a fresh page helps.
  var REFRESH_CODES = api.refreshCodes;
  var subs = [];       // every Subscription not unsubscribed
  var bound = null;    // the socket our serverpush_watch listener is on

  // state: 'pending' (waiting for a connection), 'subscribing', 'live', 'refused', 'closed'
  function Subscription(token, callbacks) {
    this.token = token;
    this.callbacks = callbacks || {};
    this.state = 'pending';
    this.sub = null;       // the server's id of what is watched (several subscriptions may share it)
    this.cursor = undefined;  // where this subscription's knowledge ends; undefined: the page's
    this.shown = {};          // pk -> the server's mark for objects it sent as matching a watched filter
    this.error = null;
  }

  Subscription.prototype.unsubscribe = function () {
    if (this.state === 'closed') return;
    var wasLive = this.state === 'live';
    this.state = 'closed';
    subs.splice(subs.indexOf(this), 1);
    if (wasLive) release(this.sub);
  };

  // Tell the server only when no other subscription of this page shares the room.
  function release(sub) {
    var shared = subs.some(function (s) { return s.sub === sub && s.state !== 'refused'; });
    if (!shared && api.socket) api.socket.emit('serverpush_unsubscribe', {sub: sub});
  }

  function tokenOf(target) {
    if (typeof target === 'string') return target;
    if (target && target.dataset && target.dataset.serverpushWatch) return target.dataset.serverpushWatch;
    throw new Error('serverpush.subscribe(): pass a watch token ({% serverpush_watch obj %}) ' +
                    'or an element with data-serverpush-watch, got ' + target);
  }

  api.subscribe = function (tokenOrElement, callbacks) {
    var s = new Subscription(tokenOf(tokenOrElement), callbacks);
    subs.push(s);
    if (api.state === 'live') send(s);  // otherwise serverpush_ready sends it
    return s;
  };
  api.subscriptions = subs;

  function send(s) {
    var socket = api.socket;
    if (!socket) return;
    bind(socket);
    var cursor = s.cursor !== undefined ? s.cursor : api.pageCursor;
    var payload = {token: s.token, cursor: cursor == null ? null : cursor};
    // Objects that joined a watched filter since the render: so that leaving it while
    // this page was away is reported too.
    if (Object.keys(s.shown).length) payload.shown = s.shown;
    s.state = 'subscribing';
    socket.emit('serverpush_subscribe', payload, function (ack) {
      if (socket === api.socket) onAck(s, ack || {});
    });
  }

  function onAck(s, ack) {
    if (s.state === 'closed') {
      if (ack.ok) release(ack.sub);
      return;
    }
    if (!ack.ok) return refuse(s, ack);
    s.sub = ack.sub;
    (ack.events || []).forEach(function (msg) { apply(s, msg); });
    s.cursor = ack.cursor;
    s.state = 'live';
  }

  function refuse(s, ack) {
    s.state = 'refused';
    s.error = {code: ack.code, message: ack.message};
    if (REFRESH_CODES[ack.code]) {
      api._handle('serverpush_refresh', s.error);
      return;
    }
    console.error('serverpush: watch refused (' + ack.code + '): ' + ack.message);
    if (typeof s.callbacks.error === 'function') s.callbacks.error.call(s, s.error);
  }

  function apply(s, msg) {
    if (msg.cursor != null) s.cursor = msg.cursor;
    if (msg.op === 'delete') delete s.shown[msg.pk];
    else if (msg.shown) remember(s.shown, msg.pk, msg.shown);
    var callback = s.callbacks[msg.op];
    if (typeof callback !== 'function') return;
    var meta = {op: msg.op, model: msg.model, pk: msg.pk, cursor: msg.cursor, replay: !!msg.replay, left: !!msg.left, resync: !!msg.resync};
    try {
      callback.call(s, msg.data, meta);
    } catch (err) {
      console.error('serverpush: the ' + msg.op + ' callback of a watch failed', err);
    }
  }

  // At most MAX_SHOWN marks, the newest (the server takes no more).
  var MAX_SHOWN = 1000;
  function remember(shown, pk, mark) {
    delete shown[pk];
    shown[pk] = mark;
    var keys = Object.keys(shown);
    if (keys.length > MAX_SHOWN) delete shown[keys[0]];
  }

  function bind(socket) {
    if (bound === socket) return;
    bound = socket;
    socket.on('serverpush_watch', function (msg) {
      if (socket !== api.socket || !msg) return;
      subs.slice().forEach(function (s) {
        if (s.state === 'live' && s.sub === msg.sub) apply(s, msg);
      });
    });
  }

  // Every (re)connect: subscribe again from where each subscription left off.
  document.addEventListener('serverpush_ready', function () {
    subs.forEach(function (s) {
      if (s.state === 'pending') send(s);
    });
  });
  document.addEventListener('serverpush_disconnect', function () {
    subs.forEach(function (s) {
      if (s.state === 'live' || s.state === 'subscribing') s.state = 'pending';
    });
  });
})();
