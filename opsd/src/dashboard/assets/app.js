// opsd's dashboard: renders the overview from the live feed (/v1/events) and the other pages
// from the JSON API, with the session cookie; every change carries the session's CSRF token.
// Text from the daemon is only ever placed with textContent, never parsed as HTML.
'use strict';

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
      route();
    } catch (error) {
      problem.textContent = error.message;
    }
  }

  // --- the overview --------------------------------------------------------------------------

  function attentionList(entries) {
    const section = el('section', { class: 'attention', 'aria-labelledby': 'attention-title' },
      el('h2', { id: 'attention-title', text: 'Needs attention' }));
    if (!entries.length) {
      section.append(el('p', { class: 'calm' }, badge('ok', 'Nothing needs a person right now.')));
      return section;
    }
    section.append(el('ul', {}, entries.map((entry) => el('li', { class: 'attention-' + entry.level },
      badge(entry.level, entry.level.toUpperCase()), ' ',
      el('strong', { text: entry.service }), ': ', entry.message, ' ',
      entry.rollout_id ? el('a', { href: '#/rollouts/' + entry.rollout_id, text: 'open the rollout' })
        : entry.page ? el('a', { href: entry.page, text: 'open ' + entry.page.slice(2) }) : null))));
    return section;
  }

  function splitBar(service) {
    const split = service.split;
    if (!split) return el('p', { text: 'Traffic split: not known yet.' });
    const canaryWeight = split.canary ? split.canary_weight_percent : 0;
    const stableWeight = 100 - canaryWeight;
    const stablePart = el('span', { class: 'split-stable' }, split.stable + ' ' + stableWeight + ' %');
    const canaryPart = canaryWeight ? el('span', { class: 'split-canary' }, split.canary + ' ' + canaryWeight + ' %') : null;
    // Widths through the style object (allowed by the page's CSP, unlike style attributes).
    stablePart.style.flexGrow = String(Math.max(stableWeight, 1));
    if (canaryPart) canaryPart.style.flexGrow = String(Math.max(canaryWeight, 1));
    const bar = el('div', { class: 'split', role: 'img', 'aria-label': 'stable ' + stableWeight + ' %, canary ' + canaryWeight + ' %' },
      stablePart, canaryPart);
    return el('div', {}, el('h3', { text: 'Traffic' }), bar);
  }

  function healthLine(label, health) {
    if (!health) return null;
    return el('li', {}, label + ' ' + health.version + ': ',
      health.healthy ? badge('ok', 'healthy') : badge('critical', 'unhealthy: ' + health.problem));
  }

  function planSteps(rollout) {
    const state = rollout.state;
    return el('ol', { class: 'steps' }, state.plan.steps.map((step, index) => {
      const current = index === state.step_index && !['promoted', 'rolled_back', 'aborted', 'failed'].includes(rollout.phase);
      const done = index < state.step_index || rollout.phase === 'promoted';
      const bake = seconds(step.bake);
      const parts = [step.canary_weight_percent + ' %', bake ? 'bake ' + spoken(bake) : 'no bake'];
      if (step.checks && step.checks.length) parts.push('checks: ' + step.checks.join(', '));
      if (step.approval) parts.push(step.approval.approvers + ' approval(s)');
      const item = el('li', { class: current ? 'current' : done ? 'done' : '', 'aria-current': current ? 'step' : null },
        parts.join(' · '), current ? el('strong', { text: ' (current)' }) : done ? ' ✓' : null);
      if (current && bake && state.step_started_at_ms) {
        item.append(el('div', {},
          el('progress', { class: 'bake', max: String(bake * 1000), value: '0', 'data-started': String(state.step_started_at_ms), 'data-bake': String(bake * 1000), 'aria-label': 'bake progress' }),
          el('span', { class: 'bake-left', 'data-started': String(state.step_started_at_ms), 'data-bake': String(bake * 1000) })));
      }
      return item;
    }));
  }

  function rolloutActions(service, rollout) {
    if (!isOperator()) return null;
    const versions = { stable: rollout.stable_version, canary: rollout.canary_version };
    const actions = [];
    if (rollout.phase === 'baking' || rollout.phase === 'starting') actions.push('pause');
    if (rollout.phase === 'paused' || rollout.phase === 'held') actions.push('resume');
    if (rollout.state.approval) actions.push('approve');
    actions.push('promote', 'abort');
    return el('div', { class: 'actions' }, actions.map((action) => actionButton(action, service.service, versions)));
  }

  function activeRollout(service) {
    const rollout = service.active_rollout;
    if (!rollout) {
      const last = service.last_rollout;
      return el('div', { class: 'rollout' },
        el('h3', { text: 'Rollout' }),
        last ? el('p', {}, 'No rollout running. Last: ', el('a', { href: '#/rollouts/' + last.id }, last.canary_version + ' ' + last.phase.replace('_', ' ')), ' ', when(last.finished_at || last.created_at), '.')
          : el('p', { text: 'No rollout yet.' }));
    }
    return el('div', { class: 'rollout active' },
      el('h3', {}, 'Rollout of ', el('a', { href: '#/rollouts/' + rollout.id, text: rollout.canary_version }), ' over ' + rollout.stable_version),
      el('p', { class: 'phase' }, badge(rollout.phase === 'held' || rollout.phase === 'paused' ? 'warning' : 'info', rollout.phase.replace('_', ' ')),
        ' step ' + rollout.step + ' of ' + rollout.steps + ' · plan ' + rollout.plan + ' · canary at ' + rollout.canary_weight_percent + ' %'),
      planSteps(rollout),
      el('p', { class: 'next' }, el('strong', { text: 'Next: ' }), service.next_decision || ''),
      el('p', { class: 'summary', text: rollout.summary }),
      rolloutActions(service, rollout));
  }

  function gatesTable(service) {
    return el('table', { class: 'gates' },
      el('caption', { text: 'Deploy gates' }),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Gate' }), el('th', { scope: 'col', text: 'State' }), el('th', { scope: 'col', text: 'Why' }))),
      el('tbody', {}, service.gates.map((gate) => el('tr', { 'data-gate': gate.gate },
        el('th', { scope: 'row', text: gate.gate }),
        el('td', {}, gate.mode === 'off' ? badge('info', 'off') : gate.open ? badge('open', 'open') : badge('closed', 'closed (' + gate.mode + ')')),
        el('td', { text: gate.open ? '' : gate.reason + (gate.what_to_do ? ' — ' + gate.what_to_do : '') })))));
  }

  function alarmsTable(service) {
    const level = (alarm) => alarm.state === 'ALARM' ? (alarm.severity === 'critical' ? 'critical' : 'warning') : alarm.state === 'OK' ? 'ok' : 'info';
    return el('table', { class: 'alarms' },
      el('caption', { text: 'Alarm rules' }),
      el('thead', {}, el('tr', {}, ['Rule', 'Severity', 'State', 'Since', 'Value'].map((name) => el('th', { scope: 'col', text: name })))),
      el('tbody', {}, service.alarms.map((alarm) => el('tr', { 'data-rule': alarm.rule },
        el('th', { scope: 'row', title: alarm.description + ' — ' + alarm.condition, text: alarm.rule }),
        el('td', { text: alarm.severity }),
        el('td', {}, badge(level(alarm), alarm.state || 'not evaluated yet')),
        el('td', {}, when(alarm.since)),
        el('td', { text: alarm.value_text || '' })))));
  }

  function serviceCard(service) {
    const frozen = service.gates.some((gate) => gate.gate === 'freeze' && !gate.open);
    const operatorButtons = isOperator() ? el('div', { class: 'actions' },
      !service.active_rollout && service.last_rollout && service.last_rollout.phase === 'promoted'
        ? actionButton('rollback', service.service, { stable: service.stable_version }) : null,
      actionButton(frozen ? 'unfreeze' : 'freeze', service.service, { stable: service.stable_version })) : null;
    return el('article', { class: 'service', 'data-service': service.service, 'aria-labelledby': 'service-' + service.service },
      el('h2', { id: 'service-' + service.service }, service.service, ' ', el('span', { class: 'stable', text: 'stable ' + (service.stable_version || '—') })),
      el('p', { class: 'address', text: service.public_addr }),
      splitBar(service),
      el('ul', { class: 'health' }, healthLine('stable', service.stable_health), healthLine('canary', service.canary_health)),
      activeRollout(service),
      operatorButtons,
      gatesTable(service),
      alarmsTable(service));
  }

  function renderOverview() {
    const main = document.getElementById('main');
    if (!page.overview) return;
    keepingFocus(() => {
      main.replaceChildren(
        el('h1', { text: 'Overview' }),
        attentionList(page.overview.attention),
        el('div', { class: 'services' }, page.overview.services.map(serviceCard)));
      updateBakes();
    });
  }

  function updateBakes() {
    const now = Date.now();
    for (const node of document.querySelectorAll('progress.bake')) {
      node.value = Math.min(Number(node.dataset.bake), now - Number(node.dataset.started));
    }
    for (const node of document.querySelectorAll('.bake-left')) {
      const left = (Number(node.dataset.bake) - (now - Number(node.dataset.started))) / 1000;
      node.textContent = left > 0 ? ' ' + spoken(left) + ' left' : ' bake done; the next look decides';
    }
  }

  // --- a rollout -----------------------------------------------------------------------------

  // Evidence, readable by a person: each field on its own line, nested ones indented.
  function evidenceList(value) {
    if (value === null || value === undefined) return el('span', { text: '—' });
    if (Array.isArray(value)) {
      if (value.every((item) => typeof item !== 'object' || item === null)) return el('span', { text: value.join(', ') });
      return el('ol', {}, value.map((item) => el('li', {}, evidenceList(item))));
    }
    if (typeof value === 'object') {
      return el('dl', { class: 'evidence' }, Object.entries(value).flatMap(([key, item]) => [
        el('dt', { text: key.replace(/_/g, ' ') }), el('dd', {}, evidenceList(item))]));
    }
    if (typeof value === 'number' && !Number.isInteger(value)) return el('span', { text: value.toPrecision(4) });
    return el('span', { text: String(value) });
  }

  // Canary against baseline, one small chart per measure, over the whole rollout.
  const TRAFFIC_CHARTS = [
    { key: 'requests_per_second', title: 'Request rate', unit: 'req/s' },
    { key: 'error_rate_percent', title: 'Error rate', unit: '%' },
    { key: 'p50_ms', title: 'Latency p50', unit: 'ms' },
    { key: 'p95_ms', title: 'Latency p95', unit: 'ms' },
    { key: 'p99_ms', title: 'Latency p99', unit: 'ms' },
  ];

  function trafficCharts(traffic) {
    const chart = traffic.chart;
    const seriesOf = (points, key) => points.map((point) => [point.second, point[key]]);
    const box = el('div', { id: 'traffic-charts', 'data-bucket-seconds': String(chart.bucket_seconds) });
    if (!chart.canary.some((point) => point.requests > 0) && !chart.baseline.some((point) => point.requests > 0)) {
      box.append(el('p', { class: 'summary', text: 'No traffic recorded for this rollout yet: the charts start when the canary takes requests.' }));
      return box;
    }
    box.append(el('p', { class: 'summary', text: 'Per ' + (chart.bucket_seconds === 1 ? 'second' : chart.bucket_seconds + ' seconds') +
      ', from the rollout\'s start; canary ' + traffic.canary_version + ' solid, baseline ' + traffic.stable_version + ' dashed.' }));
    const grid = el('div', { class: 'charts' });
    for (const measure of TRAFFIC_CHARTS) {
      grid.append(window.opsdCharts.lineChart({
        id: 'chart-' + measure.key,
        title: measure.title, unit: measure.unit,
        xFrom: chart.from_second, xTo: Math.max(chart.to_second - 1, chart.from_second + 1),
        series: [
          { name: 'canary ' + traffic.canary_version, className: 'canary', points: seriesOf(chart.canary, measure.key) },
          { name: 'baseline ' + traffic.stable_version, className: 'baseline', dashed: true, points: seriesOf(chart.baseline, measure.key) },
        ],
      }));
    }
    box.append(grid);
    return box;
  }

  // While a running rollout's page is open its charts are redrawn every two seconds.
  async function refreshTrafficCharts() {
    const match = (location.hash || '').match(/^#\/rollouts\/([A-Za-z0-9_-]+)$/);
    const current = document.getElementById('traffic-charts');
    if (!match || !current || page.finishedRollout === match[1] || document.hidden) return;
    const traffic = await api('/v1/rollouts/' + encodeURIComponent(match[1]) + '/traffic');
    const again = document.getElementById('traffic-charts');
    if (again) again.replaceWith(trafficCharts(traffic));
  }

  async function renderRollout(id, fromFeed) {
    // A finished rollout does not change: the live feed re-renders only a running one.
    if (fromFeed && page.finishedRollout === id) return;
    const main = document.getElementById('main');
    const [{ rollout }, traffic] = await Promise.all([
      api('/v1/rollouts/' + encodeURIComponent(id)),
      api('/v1/rollouts/' + encodeURIComponent(id) + '/traffic'),
    ]);
    page.finishedRollout = rollout.finished_at ? id : null;
    // Evidence a person opened stays open when the page is drawn again.
    const opened = new Set(Array.from(document.querySelectorAll('.decisions details[open]'))
      .map((node) => node.dataset.seq));
    keepingFocus(() => {
      main.replaceChildren(
        el('p', {}, el('a', { href: '#/', text: '← Overview' })),
        el('h1', {}, 'Rollout of ' + rollout.service + ' ' + rollout.canary_version + ' over ' + rollout.stable_version),
        el('p', { class: 'phase' }, badge(rollout.phase === 'rolled_back' || rollout.phase === 'failed' ? 'critical' : 'info', rollout.phase.replace('_', ' ')),
          ' plan ' + rollout.plan + ' · step ' + rollout.step + ' of ' + rollout.steps + ' · started ', when(rollout.created_at),
          rollout.finished_at ? el('span', {}, ' · ended ', when(rollout.finished_at)) : null),
        el('p', { class: 'summary', text: rollout.summary }),
        el('h2', { text: 'Plan' }), planSteps(rollout),
        el('h2', { text: 'Canary against baseline' }), trafficCharts(traffic),
        el('h2', { text: 'Decisions' }),
        el('ol', { class: 'decisions' }, rollout.decisions.map((decision) => el('li', { 'data-kind': decision.kind },
          el('h3', {}, when(decision.at), ' ', badge(decision.kind === 'roll_back' ? 'critical' : 'info', decision.kind.replace('_', ' ')), ' at step ' + (decision.step_index + 1)),
          el('p', { text: decision.summary }),
          el('details', { 'data-seq': String(decision.seq), open: opened.has(String(decision.seq)) },
            el('summary', { text: 'Evidence' }), evidenceList(decision.evidence)))))),
      updateBakes();
    });
  }

  // --- the audit log -------------------------------------------------------------------------

  async function renderAudit() {
    const main = document.getElementById('main');
    if (!isOperator()) {
      main.replaceChildren(el('h1', { text: 'Audit' }), el('p', { text: 'The audit log is for operators.' }));
      return;
    }
    const { audit } = await api('/v1/audit');
    main.replaceChildren(el('h1', { text: 'Audit log' }),
      el('table', { class: 'audit' },
        el('thead', {}, el('tr', {}, ['When', 'Who', 'Action', 'Target', 'Why'].map((name) => el('th', { scope: 'col', text: name })))),
        el('tbody', {}, audit.map((entry) => el('tr', { 'data-action': entry.action },
          el('td', {}, when(entry.at)), el('td', { text: entry.actor + ' (' + entry.role + ')' }),
          el('td', { text: entry.action }), el('td', { text: entry.target }), el('td', { text: entry.reason || '' }))))));
  }

  // --- the timeline --------------------------------------------------------------------------

  // `datetime-local` text (the viewer's zone) to RFC 3339 UTC, and back.
  function toUtc(local) {
    return local ? new Date(local).toISOString() : '';
  }

  function toLocalInput(iso) {
    if (!iso) return '';
    const date = new Date(iso);
    const pad = (number) => String(number).padStart(2, '0');
    return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T' + pad(date.getHours()) + ':' + pad(date.getMinutes());
  }

  async function renderTimeline(query) {
    const main = document.getElementById('main');
    const filter = new URLSearchParams(query);
    const { entries } = await api('/v1/timeline?' + filter.toString());
    const services = (page.overview ? page.overview.services : []).map((service) => service.service);
    const kinds = Array.from(new Set(TIMELINE_KINDS.concat(entries.map((entry) => entry.kind), filter.get('kind') || []))).filter(Boolean).sort();
    const form = el('form', { class: 'filter', id: 'timeline-filter', 'aria-label': 'Filter the timeline' },
      el('label', { for: 'filter-service', text: 'Service' }),
      el('select', { id: 'filter-service', name: 'service' },
        el('option', { value: '', text: 'every service' }),
        services.map((name) => el('option', { value: name, selected: filter.get('service') === name, text: name }))),
      el('label', { for: 'filter-kind', text: 'Kind' }),
      el('input', { id: 'filter-kind', name: 'kind', list: 'filter-kinds', value: filter.get('kind') || '', placeholder: 'any kind' }),
      el('datalist', { id: 'filter-kinds' }, kinds.map((kind) => el('option', { value: kind }))),
      el('label', { for: 'filter-since', text: 'From' }),
      el('input', { id: 'filter-since', name: 'since', type: 'datetime-local', value: toLocalInput(filter.get('since')) }),
      el('label', { for: 'filter-until', text: 'Until' }),
      el('input', { id: 'filter-until', name: 'until', type: 'datetime-local', value: toLocalInput(filter.get('until')) }),
      el('button', { type: 'submit', id: 'filter-apply', text: 'Apply' }));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      const value = (id) => document.getElementById(id).value.trim();
      if (value('filter-service')) next.set('service', value('filter-service'));
      if (value('filter-kind')) next.set('kind', value('filter-kind'));
      if (value('filter-since')) next.set('since', toUtc(value('filter-since')));
      if (value('filter-until')) next.set('until', toUtc(value('filter-until')));
      location.hash = '#/timeline' + (next.toString() ? '?' + next.toString() : '');
    });
    keepingFocus(() => {
      main.replaceChildren(el('h1', { text: 'Timeline' }), form,
        el('p', { class: 'summary', text: entries.length + ' entr' + (entries.length === 1 ? 'y' : 'ies') + ', newest first' }),
        el('table', { class: 'timeline' },
          el('thead', {}, el('tr', {}, ['When', 'Service', 'Kind', 'What', ''].map((name) => el('th', { scope: 'col', text: name })))),
          el('tbody', {}, entries.map((entry) => el('tr', { 'data-kind': entry.kind, 'data-source': entry.source },
            el('td', {}, when(entry.at)), el('td', { text: entry.service || 'account' }), el('td', { text: entry.kind }),
            el('td', { text: entry.message }),
            el('td', {}, entryLink(entry)))))));
    });
  }

  // Kinds offered by the filter even before one happened.
  const TIMELINE_KINDS = ['rollout_started', 'advance', 'promote', 'roll_back', 'alarm_state', 'release_crashed',
    'release_recovered', 'drill_passed', 'drill_failed', 'snapshot', 'cost_check', 'cost_anomaly', 'notification',
    'notification_failed', 'freeze', 'unfreeze', 'maintenance', 'approval'];

  // Where an entry of the timeline is shown in full.
  function entryLink(entry) {
    if (entry.rollout_id) return el('a', { href: '#/rollouts/' + entry.rollout_id, text: 'rollout' });
    if (entry.source === 'drill' || entry.source === 'snapshot') return el('a', { href: '#/drills', text: 'drills' });
    if (entry.source === 'cost_check') return el('a', { href: '#/costs', text: 'costs' });
    if (entry.source === 'audit') return el('a', { href: '#/audit', text: 'audit' });
    if (entry.kind === 'alarm_state') return el('a', { href: '#/alarms', text: 'alarms' });
    return null;
  }

  // --- drills --------------------------------------------------------------------------------

  // A duration in milliseconds, exact below a minute (drills on a small database take less than
  // a second).
  function ms(value) {
    if (value === null || value === undefined) return '—';
    return value < 60000 ? (value / 1000).toFixed(value < 10000 ? 2 : 1) + ' s' : spoken(value / 1000);
  }

  function drillLevel(outcome) {
    return outcome === 'passed' ? 'ok' : outcome === 'failed' ? 'critical' : outcome ? 'warning' : 'info';
  }

  function drillDetails(drill) {
    const report = drill.report || {};
    const measurement = report.measurement || {};
    return el('details', { 'data-drill': drill.id },
      el('summary', {}, when(drill.started_at), ' ', badge(drillLevel(drill.outcome), drill.outcome || 'running'),
        ' RTO ' + ms(measurement.rto_ms) + ' · RPO ' + ms(measurement.rpo_ms)),
      (report.reasons || []).length ? el('p', { class: 'problem', text: report.reasons.join('; ') }) : null,
      el('h4', { text: 'Phases' }),
      el('ol', { class: 'phases' }, (measurement.phases || []).map((phase) => el('li', { text: phase.phase + ': ' + ms(phase.millis) }))),
      el('h4', { text: 'Verification' }),
      el('table', { class: 'verification' },
        el('thead', {}, el('tr', {}, ['Item', 'Result', 'Detail'].map((name) => el('th', { scope: 'col', text: name })))),
        el('tbody', {}, (report.verification || []).map((item) => el('tr', {},
          el('th', { scope: 'row', text: item.name }),
          el('td', {}, badge(item.status === 'passed' ? 'ok' : item.status === 'failed' ? 'critical' : 'warning', item.status.replace('_', ' '))),
          el('td', { text: item.detail }))))),
      el('p', { class: 'summary', text: 'snapshot ' + (drill.snapshot_id || '—') + ' · target ' + (report.target || '—') }));
  }

  async function renderDrills() {
    const main = document.getElementById('main');
    const { databases, drills } = await api('/v1/drills?limit=100');
    const sections = databases.map((database) => {
      const own = drills.filter((drill) => drill.database === database);
      const finished = own.filter((drill) => drill.report && drill.report.measurement).slice().reverse();
      const latest = finished[finished.length - 1];
      const report = latest ? latest.report : null;
      const seconds = (value) => value === null || value === undefined ? null : value / 1000;
      const point = (drill, key) => [Date.parse(drill.started_at) / 1000, seconds(drill.report.measurement[key])];
      const trend = finished.length ? window.opsdCharts.lineChart({
        id: 'drill-trend-' + database,
        title: 'RTO and RPO of ' + database + ', drill by drill', unit: 's', markers: true,
        xLabel: (x) => new Date(x * 1000).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
        series: [
          { name: 'RTO', className: 'canary', points: finished.map((drill) => point(drill, 'rto_ms')) },
          { name: 'RPO', className: 'baseline', dashed: true, points: finished.map((drill) => point(drill, 'rpo_ms')) },
        ],
        references: report ? [
          { value: report.rto_target_ms / 1000, label: 'RTO target ' + ms(report.rto_target_ms) },
          { value: report.rpo_target_ms / 1000, label: 'RPO target ' + ms(report.rpo_target_ms) },
        ] : [],
      }) : null;
      return el('section', { class: 'panel', 'data-database': database, 'aria-labelledby': 'drills-' + database },
        el('h2', { id: 'drills-' + database }, database, ' ', own.length ? badge(drillLevel(own[0].outcome), 'last ' + (own[0].outcome || 'running')) : badge('warning', 'never drilled')),
        report ? el('p', { text: 'Targets: RTO ' + ms(report.rto_target_ms) + ', RPO ' + ms(report.rpo_target_ms) + '.' }) : null,
        trend,
        own.length ? el('div', { class: 'drill-list' }, own.map(drillDetails)) : el('p', { text: 'No drill yet: `opsd drill run ' + database + '` runs one.' }));
    });
    main.replaceChildren(el('h1', { text: 'Drills' }),
      ...(databases.length ? sections : [el('p', { text: 'No database is configured for drills (opsd.yaml `databases`).' })]));
  }

  // --- costs ---------------------------------------------------------------------------------

  function usd(value) {
    return value === null || value === undefined ? '—' : '$' + Number(value).toFixed(2);
  }

  async function renderCosts() {
    const main = document.getElementById('main');
    const { latest } = await api('/v1/costs');
    if (!latest) {
      main.replaceChildren(el('h1', { text: 'Costs' }), el('p', { text: 'No cost check yet: opsd runs one a few seconds after it starts, then on its interval; `opsd cost check` runs one now.' }));
      return;
    }
    const report = latest.report;
    const forecast = report.forecast;
    const stateLevel = (state) => state === 'critical' ? 'critical' : state === 'warning' ? 'warning' : 'ok';
    const chart = window.opsdCharts.rangeChart({
      id: 'cost-forecast',
      title: 'Month to date and the month-end forecast (' + Math.round(forecast.interval_percent) + ' % interval) against the budgets',
      format: usd,
      bars: [{ label: 'spent', value: report.month_to_date_usd }],
      interval: { low: forecast.low_usd, high: forecast.high_usd, point: forecast.point_usd },
      lines: report.budgets.map((budget) => ({ value: budget.budget_usd, label: budget.budget + ' ' + usd(budget.budget_usd) })),
    });
    main.replaceChildren(
      el('h1', {}, 'Costs ', badge(stateLevel(report.state), report.state)),
      el('p', {}, 'Checked ', when(latest.checked_at), ' from ' + report.source + ', month ' + report.month_start + ' to ' + report.month_end + '.'),
      chart,
      el('p', { text: 'Forecast ' + usd(forecast.point_usd) + ' (' + usd(forecast.low_usd) + ' to ' + (forecast.high_usd === null ? 'unbounded: too little history' : usd(forecast.high_usd)) + '), ' + forecast.method + ', ' + forecast.days_observed + ' days observed.' }),
      el('table', { class: 'costs-services' },
        el('caption', { text: 'Month to date by service' }),
        el('thead', {}, el('tr', {}, ['Service', 'Spent'].map((name) => el('th', { scope: 'col', text: name })))),
        el('tbody', {}, report.services.length ? report.services.map((service) => el('tr', {}, el('th', { scope: 'row', text: service.service }), el('td', { text: usd(service.month_to_date_usd) })))
          : el('tr', {}, el('td', { colspan: '2', text: 'No spend recorded this month yet.' })))),
      el('table', { class: 'budgets' },
        el('caption', { text: 'Budgets' }),
        el('thead', {}, el('tr', {}, ['Budget', 'State', 'Spent', 'Forecast', 'Limit'].map((name) => el('th', { scope: 'col', text: name })))),
        el('tbody', {}, report.budgets.map((budget) => el('tr', { 'data-budget': budget.budget },
          el('th', { scope: 'row', text: budget.budget }), el('td', {}, badge(stateLevel(budget.state), budget.state)),
          el('td', { text: usd(budget.month_to_date_usd) + ' (' + Math.round(budget.actual_percent) + ' %)' }),
          el('td', { text: usd(budget.forecast.point_usd) + ' (' + Math.round(budget.forecast_percent) + ' %)' }),
          el('td', { text: usd(budget.budget_usd) }))))),
      el('h2', { text: 'Anomalies' }),
      report.anomalies.length ? el('ul', { class: 'anomalies' }, report.anomalies.map((anomaly) => el('li', {},
        badge('warning', anomaly.service), ' ' + anomaly.day + ': ' + usd(anomaly.actual_usd) + ' against ' + usd(anomaly.expected_usd) + ' expected',
        anomaly.rollouts_before.length ? el('span', {}, ' · rollouts just before: ', anomaly.rollouts_before.flatMap((id, index) => [index ? ', ' : '', el('a', { href: '#/rollouts/' + id, text: id })])) : null)))
        : el('p', { text: 'None today or yesterday.' }));
  }

  // --- alarms --------------------------------------------------------------------------------

  async function renderAlarms() {
    const main = document.getElementById('main');
    const { alarms } = await api('/v1/alarms');
    const histories = await Promise.all(alarms.map((alarm) =>
      api('/v1/alarms/history?service=' + encodeURIComponent(alarm.service) + '&rule=' + encodeURIComponent(alarm.rule))
        .then((body) => body.transitions).catch(() => [])));
    const level = (state, severity) => state === 'ALARM' ? (severity === 'critical' ? 'critical' : 'warning') : state === 'OK' ? 'ok' : 'info';
    main.replaceChildren(el('h1', { text: 'Alarms' }),
      el('table', { class: 'alarm-rules' },
        el('thead', {}, el('tr', {}, ['Service', 'Rule', 'Severity', 'Condition', 'State', 'Since', 'Value', 'History'].map((name) => el('th', { scope: 'col', text: name })))),
        el('tbody', {}, alarms.map((alarm, index) => el('tr', { 'data-rule': alarm.rule, 'data-service': alarm.service },
          el('td', { text: alarm.service }),
          el('th', { scope: 'row', title: alarm.description, text: alarm.rule }),
          el('td', { text: alarm.severity }),
          el('td', { text: alarm.condition }),
          el('td', {}, badge(level(alarm.state, alarm.severity), alarm.state || 'not evaluated yet'), alarm.reason ? el('div', { class: 'summary', text: alarm.reason }) : null),
          el('td', {}, when(alarm.since)),
          el('td', { text: alarm.value_text || '' }),
          el('td', {}, histories[index].length ? el('details', { class: 'alarm-history' },
            el('summary', { text: histories[index].length + ' change' + (histories[index].length === 1 ? '' : 's') }),
            el('ol', {}, histories[index].map((change) => el('li', {}, when(change.at), ' ' + (change.from_state || 'start') + ' → ' + change.to_state + ': ' + change.reason)))) : 'no change yet'))))));
  }

  // --- routing and the live feed -------------------------------------------------------------

  function route(fromFeed) {
    const hash = location.hash || '#/';
    const rollout = hash.match(/^#\/rollouts\/([A-Za-z0-9_-]+)$/);
    let done;
    if (rollout) done = renderRollout(rollout[1], fromFeed === true);
    else if (hash === '#/audit') done = renderAudit();
    else if (hash === '#/drills') done = renderDrills();
    else if (hash === '#/costs') done = renderCosts();
    else if (hash === '#/alarms') done = renderAlarms();
    else if (hash === '#/timeline' || hash.startsWith('#/timeline?')) {
      // A person editing the filter is not interrupted by the live feed.
      if (fromFeed === true && document.getElementById('timeline-filter') && document.getElementById('timeline-filter').contains(document.activeElement)) return;
      done = renderTimeline(hash.slice('#/timeline'.length + 1));
    }
    else done = Promise.resolve(renderOverview());
    done.catch((error) => toast(error.message));
  }

  function setLive(live) {
    const badgeNode = document.getElementById('live');
    badgeNode.textContent = live ? '● live' : '○ reconnecting…';
    badgeNode.className = 'live ' + (live ? 'on' : 'off');
  }

  function connect() {
    const source = new EventSource('/v1/events');
    page.source = source;
    source.addEventListener('overview', (event) => {
      page.overview = JSON.parse(event.data);
      setLive(true);
      const hash = location.hash || '#/';
      if (hash === '#/' || hash === '#') renderOverview();
      else if (hash.startsWith('#/rollouts/') || hash.startsWith('#/timeline')) route(true);
    });
    source.addEventListener('error', () => {
      setLive(false);
      // The browser reconnects by itself; a session that ended sends the page to the login.
      api('/v1/session').catch(() => {});
    });
  }

  async function start() {
    document.documentElement.dataset.pageId = page.pageId;
    page.me = await api('/v1/session');
    document.getElementById('who').textContent = page.me.name + ' (' + page.me.role + ')';
    document.getElementById('nav-audit').hidden = !isOperator();
    document.getElementById('logout').addEventListener('click', async () => {
      await api('/logout', { method: 'POST' }).catch(() => {});
      location.assign('/login');
    });
    document.getElementById('confirm-form').addEventListener('submit', runPending);
    document.getElementById('confirm-cancel').addEventListener('click', () => document.getElementById('confirm').close());
    window.addEventListener('hashchange', () => route());
    setInterval(updateBakes, 1000);
    setInterval(() => refreshTrafficCharts().catch(() => {}), 2000);
    connect();
    route();
  }

  start().catch((error) => toast(error.message));
})();
