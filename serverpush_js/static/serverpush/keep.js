/*!
 * serverpush keep.js: what the user typed survives every update (serverpush_js/README.md,
 * "What the user typed"). Load it after serverpush.js and vendor/idiomorph.min.js.
 *
 *   serverpush.morph(element, html, outer)  // morph, keeping focus, caret and typed input
 *   serverpush.typed(field)                 // whether the user changed this field
 *   serverpush.reload()                     // replaced: waits while a field has focus, restores input
 */
(function () {
  'use strict';

  var api = window.serverpush;
  if (!api) throw new Error('serverpush: load serverpush.js before keep.js');
  if (!window.Idiomorph) throw new Error('serverpush: load vendor/idiomorph.min.js before keep.js');

  var SAVED = 'serverpush.kept:';  // sessionStorage key prefix, + the page's path
  var MAX_AGE = 60000;             // ms: input saved for a reload older than this is stale
  var TEXT_TYPES = /^(text|search|email|url|tel|password|number|date|datetime-local|month|week|time|color|range)$/;

  // A field the user changed since it was rendered (or last morphed): its value is not
  // the one in its HTML. No event tracking needed, and a reset field is clean again.
  function typed(el) {
    if (el instanceof HTMLTextAreaElement) return el.value !== el.defaultValue;
    if (el instanceof HTMLInputElement) {
      if (el.type === 'checkbox' || el.type === 'radio') return el.checked !== el.defaultChecked;
      return el.type !== 'hidden' && el.type !== 'file' && el.value !== el.defaultValue;
    }
    if (el instanceof HTMLSelectElement) {
      var chosen = Array.prototype.some.call(el.options, function (o) { return o.defaultSelected; });
      if (!chosen && !el.multiple) return el.selectedIndex > 0;  // the first option is the default
      return Array.prototype.some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    return false;
  }

  // Idiomorph leaves the focused field's value alone (ignoreActiveValue); this keeps
  // the value of every other field the user changed, too.
  function keepTyped(attribute, el) {
    if ((attribute === 'value' || attribute === 'checked') && typed(el)) return false;
    if (attribute === 'selected' && el.parentElement instanceof HTMLSelectElement && typed(el.parentElement)) return false;
    return true;
  }

  // Status elements show the client's own state, which the server's HTML cannot know.
  function keepStatus(oldNode) {
    return !(oldNode.nodeType === 1 && oldNode.hasAttribute('data-serverpush-status'));
  }

  var OPTIONS = {
    ignoreActiveValue: true,
    restoreFocus: true,
    callbacks: {beforeAttributeUpdated: keepTyped, beforeNodeMorphed: keepStatus}
  };

  // Morphs `element`'s content (or, with `outer`, the element itself) into `html`
  // (a string or a node). Returns the nodes now in its place.
  function morph(element, html, outer) {
    var options = Object.assign({}, OPTIONS, {morphStyle: outer ? 'outerHTML' : 'innerHTML'});
    return window.Idiomorph.morph(element, html, options);
  }

  function isTextField(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return true;
    return el instanceof HTMLInputElement && TEXT_TYPES.test(el.type);
  }

  // --- the reload of a resync ---------------------------------------------------

  var pending = false;

  // While the user is in a field, a reload would cut them off mid-word: wait until
  // they leave it (the page shows it is reloading), then save what was typed in every
  // field, reload, and put it back.
  function reload() {
    if (pending) return;
    pending = true;
    var field = document.activeElement;
    var waiting = isTextField(field);
    fire('serverpush_reloading', {waiting: waiting});
    if (!waiting) return saveAndReload();
    field.addEventListener('blur', function () {
      setTimeout(function () {  // focus may move straight to another field
        pending = false;
        reload();
      }, 0);
    }, {once: true});
  }

  function saveAndReload() {
    try {
      sessionStorage.setItem(SAVED + location.pathname + location.search, JSON.stringify(snapshot()));
    } catch (err) {
      console.warn('serverpush: could not keep the typed input over the reload', err);
    }
    location.reload();
  }

  function fields() {
    return Array.prototype.slice.call(document.querySelectorAll('input, textarea, select'));
  }

  // A field's name across the reload: its id, else its form and name and rank.
  function keyOf(el) {
    if (el.id) return '#' + el.id;
    var form = el.form ? (el.form.id || String(Array.prototype.indexOf.call(document.forms, el.form))) : '';
    var same = fields().filter(function (f) { return f.form === el.form && f.name === el.name; });
    return form + '|' + el.name + '|' + same.indexOf(el);
  }

  function valueOf(el) {
    if (el instanceof HTMLSelectElement) {
      return Array.prototype.filter.call(el.options, function (o) { return o.selected; }).map(function (o) { return o.value; });
    }
    return el.type === 'checkbox' || el.type === 'radio' ? el.checked : el.value;
  }

  function snapshot() {
    var saved = {at: Date.now(), fields: {}};
    fields().forEach(function (el) {
      if (typed(el)) saved.fields[keyOf(el)] = valueOf(el);
    });
    return saved;
  }

  function restore() {
    var name = SAVED + location.pathname + location.search;
    var saved;
    try {
      saved = JSON.parse(sessionStorage.getItem(name) || 'null');
      sessionStorage.removeItem(name);
    } catch (err) {
      return;
    }
    if (!saved || Date.now() - saved.at > MAX_AGE) return;
    var byKey = {};
    fields().forEach(function (el) { byKey[keyOf(el)] = el; });
    Object.keys(saved.fields).forEach(function (key) {
      var el = byKey[key];
      if (el) put(el, saved.fields[key]);
    });
  }

  function put(el, value) {
    if (el instanceof HTMLSelectElement) {
      Array.prototype.forEach.call(el.options, function (o) { o.selected = value.indexOf(o.value) >= 0; });
    } else if (el.type === 'checkbox' || el.type === 'radio') {
      el.checked = !!value;
    } else {
      el.value = value;
    }
  }

  function fire(type, detail) {
    document.dispatchEvent(new CustomEvent(type, {detail: detail}));
  }

  api.typed = typed;
  api.morph = morph;
  api.reload = reload;

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', restore);
  } else {
    restore();
  }
})();
