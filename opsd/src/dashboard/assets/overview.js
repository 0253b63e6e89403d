// The overview page, drawn from the live feed's document: what needs attention first, then one
// card per service (traffic split, health, the active rollout with its plan and bake, gates and
// alarm rules, and the operator's buttons).
'use strict';

(function () {
  const { page, el, when, seconds, spoken, badge, isOperator, keepingFocus, actionButton } = window.opsd;

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
      // The bake runs only while the rollout bakes: a pause or hold stops it, and a resume
      // bakes the step again from its start.
      if (current && bake && (rollout.phase === 'paused' || rollout.phase === 'held')) {
        item.append(el('div', { class: 'bake-stopped', text: 'bake stopped; a resume bakes this step again from its start' }));
      } else if (current && bake && rollout.phase === 'baking' && state.step_started_at_ms) {
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

  // Which opsd instance acts (several may share a store; the others follow) and since when.
  function leaderLine(leader) {
    if (!leader) return null;
    return el('p', { class: 'leader', 'data-leader': leader.instance },
      'leader ', el('strong', { text: leader.instance }), ' · epoch ' + leader.epoch + ' · since ', when(leader.since),
      leader.lapsed ? badge('warning', 'lease lapsed: a follower takes over') : null);
  }

  function renderOverview() {
    const main = document.getElementById('main');
    if (!page.overview) return;
    keepingFocus(() => {
      main.replaceChildren(
        el('h1', { text: 'Overview' }),
        leaderLine(page.overview.leader),
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

  Object.assign(window.opsd, { renderOverview, updateBakes, planSteps });
})();
