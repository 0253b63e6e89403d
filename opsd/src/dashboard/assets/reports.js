// The Drills, Costs and Alarms pages: drill history per database with the RTO/RPO trend against
// the targets, the month's spend and forecast against the budgets, and every alarm rule with its
// history.
'use strict';

(function () {
  const { el, when, spoken, badge, api } = window.opsd;

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

  Object.assign(window.opsd, { renderDrills, renderCosts, renderAlarms });
})();
