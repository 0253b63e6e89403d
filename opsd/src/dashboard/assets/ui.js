// The dashboard's shared pieces, loaded before the pages: the page's state, building nodes
// (text from the daemon is only ever placed with textContent, never parsed as HTML), times in
// the viewer's zone, the JSON API with the session's CSRF token, and the operator actions with
// their reason and confirmation. Everything is published on `window.opsd` for the pages.
'use strict';

window.opsd = {};

(function () {
  const page = {
    me: null,
    overview: null,
    source: null,
    pageId: String(Math.random()).slice(2),
    pending: null,
  };

  // --- small helpers -------------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A time in the viewer's zone, with UTC on hover.
  function when(iso) {
    if (!iso) return el('span', { text: '—' });
    const date = new Date(iso);
    return el('time', {
      datetime: date.toISOString(),
      title: date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
      text: date.toLocaleString(),
    });
  }

  function seconds(duration) {
    return duration ? duration.secs + duration.nanos / 1e9 : 0;
  }

  function spoken(totalSeconds) {
    const s = Math.max(0, Math.round(totalSeconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = s % 60;
    return (h ? h + 'h' : '') + (m ? m + 'm' : '') + (rest || (!h && !m) ? rest + 's' : '');
  }

  function badge(level, text) {
    const marks = { critical: '‼', warning: '!', ok: '✓', open: '✓', closed: '✕', info: '•' };
    return el('span', { class: 'badge ' + level }, el('span', { 'aria-hidden': 'true', text: (marks[level] || '•') + ' ' }), text);
  }

  function toast(text) {
    const box = document.getElementById('toast');
    box.textContent = text;
    box.classList.add('shown');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => box.classList.remove('shown'), 6000);
  }

  async function api(path, options) {
    const request = Object.assign({ credentials: 'same-origin', headers: {} }, options || {});
    if (request.method && request.method !== 'GET') {
      request.headers['X-CSRF-Token'] = page.me ? page.me.csrf_token : '';
      request.headers['Content-Type'] = 'application/json';
    }
    const response = await fetch(path, request);
    if (response.status === 401) {
      location.assign('/login');
      throw new Error('the session has ended');
    }
    const body = response.status === 204 ? {} : await response.json();
    if (!response.ok) {
      throw new Error((body.error && body.error.message) || response.statusText);
    }
    return body;
  }

  function isOperator() {
    return page.me && page.me.role === 'operator';
  }

  // Re-rendering replaces the page's nodes: the focused control is found again by its id.
  function keepingFocus(render) {
    const focused = document.activeElement && document.activeElement.id;
    render();
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
  }

  // --- actions -------------------------------------------------------------------------------

  const ACTIONS = {
    pause: { label: 'Pause', verb: 'Pause', effect: 'The canary keeps its current weight until resumed.' },
    resume: { label: 'Resume', verb: 'Resume', effect: 'The rollout goes on from its current step.' },
    promote: { label: 'Promote', verb: 'Promote', effect: 'The canary takes all traffic now, without the remaining bakes.' },
    abort: { label: 'Abort', verb: 'Abort', effect: 'Traffic returns to the stable release at once.' },
    approve: { label: 'Approve', verb: 'Approve', effect: 'Your approval is counted once.' },
    rollback: { label: 'Roll back', verb: 'Roll back', effect: 'The previous release takes all traffic again.' },
    freeze: { label: 'Freeze deploys', verb: 'Freeze deploys of', effect: 'No deploy of this service starts until it is unfrozen.' },
    unfreeze: { label: 'Unfreeze', verb: 'Unfreeze deploys of', effect: 'Deploys of this service may start again.' },
  };

  function actionButton(action, service, versions) {
    return el('button', {
      type: 'button',
      id: 'act-' + service + '-' + action,
      class: action === 'abort' || action === 'rollback' || action === 'freeze' ? 'danger' : '',
      'data-action': action,
      'data-service': service,
      onclick: () => confirmAction(action, service, versions),
    }, ACTIONS[action].label);
  }

  function confirmAction(action, service, versions) {
    const dialog = document.getElementById('confirm');
    const what = ACTIONS[action];
    let target = service;
    if (versions.canary) target = service + ' ' + versions.canary + ' (stable ' + versions.stable + ')';
    else if (versions.stable) target = service + ' ' + versions.stable;
    document.getElementById('confirm-title').textContent = what.verb + ' ' + target + '?';
    document.getElementById('confirm-detail').textContent = what.effect;
    document.getElementById('confirm-reason').value = '';
    document.getElementById('confirm-problem').textContent = '';
    document.getElementById('confirm-go').textContent = what.label;
    page.pending = { action, service };
    dialog.showModal();
    document.getElementById('confirm-reason').focus();
  }

  async function runPending(event) {
    event.preventDefault();
    const pending = page.pending;
    const reason = document.getElementById('confirm-reason').value.trim();
    const problem = document.getElementById('confirm-problem');
    if (reason.length < 3) {
      problem.textContent = 'Say why, in a few words: the reason goes into the audit log.';
      return;
    }
    const body = { reason };
    let path = '/v1/services/' + encodeURIComponent(pending.service) + '/' + pending.action;
    if (pending.action === 'freeze' || pending.action === 'unfreeze') {
      path = '/v1/' + pending.action;
      body.service = pending.service;
    }
    try {
      await api(path, { method: 'POST', body: JSON.stringify(body) });
      document.getElementById('confirm').close();
      toast(ACTIONS[pending.action].label + ': done for ' + pending.service);
      page.pending = null;
      window.opsd.route();
    } catch (error) {
      problem.textContent = error.message;
    }
  }

  Object.assign(window.opsd, { page, el, when, seconds, spoken, badge, toast, api, isOperator, keepingFocus, actionButton, runPending });
})();
