// The merged timeline with its filter (service, kind, time), each entry linking to where it is
// shown in full, and the operators' audit log.
'use strict';

(function () {
  const { page, el, when, api, isOperator, keepingFocus } = window.opsd;

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
    'notification_failed', 'freeze', 'unfreeze', 'maintenance', 'approval', 'migrate', 'migration', 'restore', 'runbook'];

  // Where an entry of the timeline is shown in full.
  function entryLink(entry) {
    if (entry.rollout_id) return el('a', { href: '#/rollouts/' + entry.rollout_id, text: 'rollout' });
    if (entry.source === 'drill' || entry.source === 'snapshot') return el('a', { href: '#/drills', text: 'drills' });
    if (entry.source === 'cost_check') return el('a', { href: '#/costs', text: 'costs' });
    if (entry.source === 'audit') return el('a', { href: '#/audit', text: 'audit' });
    if (entry.kind === 'alarm_state') return el('a', { href: '#/alarms', text: 'alarms' });
    return null;
  }

  Object.assign(window.opsd, { renderAudit, renderTimeline });
})();
