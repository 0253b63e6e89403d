// A rollout's page: its plan, the canary-against-baseline charts (redrawn while it runs),
// every decision with its evidence laid out for a person, and the rollout's own timeline.
'use strict';

(function () {
  const { page, el, when, badge, api, keepingFocus, planSteps, updateBakes } = window.opsd;

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
      const text = traffic.samples_expired
        ? 'This rollout finished more than ' + traffic.sample_retention + ' ago: its per-second traffic is no longer kept (sample_retention). Its decisions and timeline are.'
        : 'No traffic recorded for this rollout yet: the charts start when the canary takes requests.';
      box.append(el('p', { class: 'summary', text: text }));
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

  // Everything that happened to the rollout, newest first: steps, decisions, crashes,
  // notifications, its snapshot.
  function rolloutTimeline(entries) {
    if (!entries.length) return el('p', { text: 'Nothing recorded yet.' });
    return el('table', { class: 'timeline', id: 'rollout-timeline' },
      el('thead', {}, el('tr', {}, ['When', 'Kind', 'What'].map((name) => el('th', { scope: 'col', text: name })))),
      el('tbody', {}, entries.map((entry) => el('tr', { 'data-kind': entry.kind },
        el('td', {}, when(entry.at)), el('td', { text: entry.kind }), el('td', { text: entry.message })))));
  }

  async function renderRollout(id, fromFeed) {
    // A finished rollout does not change: the live feed re-renders only a running one.
    if (fromFeed && page.finishedRollout === id) return;
    const main = document.getElementById('main');
    const [{ rollout }, traffic, { entries }] = await Promise.all([
      api('/v1/rollouts/' + encodeURIComponent(id)),
      api('/v1/rollouts/' + encodeURIComponent(id) + '/traffic'),
      api('/v1/timeline?limit=200&rollout=' + encodeURIComponent(id)),
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
        el('h2', { text: 'Plan' }), planSteps(rollout), schemaMigrations(rollout.state.schema),
        el('h2', { text: 'Canary against baseline' }), trafficCharts(traffic),
        el('h2', { text: 'Decisions' }),
        el('ol', { class: 'decisions' }, rollout.decisions.map((decision) => el('li', { 'data-kind': decision.kind },
          el('h3', {}, when(decision.at), ' ', badge(decision.kind === 'roll_back' ? 'critical' : 'info', decision.kind.replace('_', ' ')), ' at step ' + (decision.step_index + 1)),
          el('p', { text: decision.summary }),
          el('details', { 'data-seq': String(decision.seq), open: opened.has(String(decision.seq)) },
            el('summary', { text: 'Evidence' }), evidenceList(decision.evidence))))),
        el('h2', { text: 'Timeline' }),
        rolloutTimeline(entries));
      updateBakes();
    });
  }

  // The schema migrations the rollout brings: expand before the canary, contract after promotion.
  function schemaMigrations(schema) {
    if (!schema) return null;
    const run = (state) => ({ pending: 'pending', applied: 'applied', failed: 'failed: ' + (state.detail || ''),
      skipped: 'not run (the rollout was not promoted)' })[state.state] || state.state;
    const group = (label, migrations, state) => migrations.length === 0 ? null : el('li', {},
      label + ' ' + migrations.map((m) => m.version + ' ' + m.name).join(', ') + ': ' + run(state));
    return el('ul', { class: 'schema-migrations', 'aria-label': 'Schema migrations' },
      group('Expand migrations (before the canary)', schema.expand, schema.expand_run),
      group('Contract migrations (after the promotion)', schema.contract, schema.contract_run));
  }

  Object.assign(window.opsd, { renderRollout, refreshTrafficCharts });
})();
